using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Workers.Audio;

/// <summary>
/// Every format but 16 kHz PCM WAV: an ffmpeg child process decodes and resamples to 16 kHz
/// mono f32le on its stdout, which <see cref="Read"/> copies straight into the caller's span.
/// stderr is drained by a background task (a full stderr pipe would block ffmpeg and so
/// deadlock the reader) keeping its last 4 KB for error messages. A watchdog kills ffmpeg
/// when a read waits longer than <see cref="AudioDecoderOptions.ReadTimeout"/>.
/// </summary>
internal sealed class FfmpegAudioSource : IAudioSource
{
    private const int StderrTailChars = 4096;

    // At least this much audio is decoded and dropped before a range's start.
    private const long PrerollSeconds = 1;

    private readonly string _path;
    private readonly string _inputUrl;
    private readonly CorpusFileStream? _input;
    private readonly AudioDecoderOptions _options;
    private readonly Process _process;
    private readonly Stream _stdout;
    private readonly StringBuilder _stderrTail = new();
    private readonly Task _stderrPump;
    private readonly Timer _watchdog;
    private long _remaining;
    private State _state;
    private ExceptionDispatchInfo? _fault;

    // Stopwatch timestamp at which the pending stdout read began; 0 when none is pending.
    // The watchdog only kills ffmpeg while a read waits, so a slow consumer (ffmpeg blocked
    // on a full pipe) is never mistaken for a hung ffmpeg. A periodic check rather than a
    // timer re-armed per read: Timer.Change on every read tripled MP3 decode time.
    private long _readStartedAt;
    private volatile bool _timedOut;

    private enum State
    {
        Reading,
        Completed,
        Faulted,
        Disposed,
    }

    private FfmpegAudioSource(string path, string inputUrl, CorpusFileStream? input, AudioDecoderOptions options, Process process, long remaining)
    {
        _path = path;
        _inputUrl = inputUrl;
        _input = input;
        _options = options;
        _process = process;
        _stdout = process.StandardOutput.BaseStream;
        _remaining = remaining;
        _watchdog = new Timer(static self => ((FfmpegAudioSource)self!).OnWatchdog(), this, Timeout.Infinite, Timeout.Infinite);
        if (options.ReadTimeout != Timeout.InfiniteTimeSpan)
        {
            // Checked four times per timeout, at most once a second: a hung ffmpeg is killed
            // between 1 and 1.25 timeouts (or timeout + 1 s) after it last wrote.
            var period = TimeSpan.FromTicks(Math.Clamp(options.ReadTimeout.Ticks / 4, TimeSpan.TicksPerMillisecond, TimeSpan.TicksPerSecond));
            _watchdog.Change(period, period);
        }
        _stderrPump = Task.Run(PumpStderrAsync);
    }

    public int SampleRate => AudioDecoder.SampleRate;

    /// <summary>The ffmpeg process id, for tests.</summary>
    internal int ProcessId => _process.Id;

    /// <param name="input">The file, already opened and checked by <see cref="CorpusFileOpener"/>: ffmpeg
    /// reads it through this process's descriptor (<c>/proc/PID/fd/N</c>), so it gets the very file that
    /// was checked even if its name was swapped since. Owned by the source (also when this throws).
    /// Null: ffmpeg opens <paramref name="path"/> itself.</param>
    public static FfmpegAudioSource Start(string path, CorpusFileStream? input, long startSample, long? endSample, AudioDecoderOptions options)
    {
        try
        {
            return StartCore(path, input, startSample, endSample, options);
        }
        catch
        {
            input?.Dispose();
            throw;
        }
    }

    private static FfmpegAudioSource StartCore(string path, CorpusFileStream? input, long startSample, long? endSample, AudioDecoderOptions options)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Decoding through ffmpeg reads f32le output and needs a little-endian machine.");

        string inputUrl = input is null ? ExternalTool.InputUrl(path) : DescriptorUrl(input);
        var arguments = new List<string> { "-nostdin", "-v", "error" };
        AddInput(arguments, inputUrl, startSample);
        AddOutput(arguments, 0, startSample, endSample, "-");

        var process = ExternalTool.TryStart(options.FfmpegPath, arguments, out string? error)
            ?? throw new InvalidOperationException(error);
        return new FfmpegAudioSource(path, inputUrl, input, options, process, SampleCap(startSample, endSample));
    }

    /// <summary>The checked file as ffmpeg's input: this process's descriptor of it, so ffmpeg reads that very file.</summary>
    internal static string DescriptorUrl(CorpusFileStream input) => "file:" + CorpusFileOpener.DescriptorPath(input.SafeFileHandle);

    /// <summary>Samples a range's output holds at most: -t stops ffmpeg at the end, and the cap guarantees the count whatever ffmpeg rounds.</summary>
    internal static long SampleCap(long startSample, long? endSample) => endSample is long end ? Math.Max(0, end - startSample) : long.MaxValue;

    /// <summary>
    /// The input options of one file: one decoder thread (<see cref="DecoderThreads"/>), and a seek to a whole second at
    /// least <see cref="PrerollSeconds"/> before <paramref name="startSample"/> (see <see cref="AddOutput"/>).
    /// </summary>
    internal static void AddInput(List<string> arguments, string inputUrl, long startSample)
    {
        long seekSeconds = SeekSeconds(startSample);
        if (seekSeconds > 0)
            arguments.AddRange(["-ss", seekSeconds.ToString(CultureInfo.InvariantCulture)]);
        arguments.AddRange(["-threads", DecoderThreads, "-i", inputUrl]);
    }

    /// <summary>
    /// Threads each ffmpeg decodes with: one. A worker's decoder threads are its share of the cores (Fleet:DecoderThreads
    /// beside the intra-op threads), one ffmpeg each; ffmpeg's default is frame threads as many as the machine has cores,
    /// per decoder that has them (FLAC: 6 threads to 3 on 2 cores), which oversubscribes the cores the budget gave out.
    /// With the cores busy, as they are while a shard runs, two five-minute FLACs per ffmpeg, two ffmpegs at once on 2
    /// cores, took 0.50-0.53 s and 0.91-1.02 CPU-seconds with one thread against 0.55-0.66 s and 1.10-1.22 with the default
    /// (five alternations); the samples are the same (lossless decoders are exact, the rest run the same code per frame).
    /// </summary>
    internal const string DecoderThreads = "1";

    /// <summary>
    /// The output options that decode input <paramref name="input"/> (its first audio stream) to 16 kHz mono
    /// f32le in <paramref name="output"/> ("-": stdout), from <paramref name="startSample"/> to <paramref name="endSample"/>.
    /// </summary>
    /// <remarks>
    /// Seeking: ffmpeg seeks the input (-ss before -i, <see cref="AddInput"/>) to a whole second at least
    /// PrerollSeconds before the start, then the output -ss drops the samples up to the
    /// start after resampling, on the 16 kHz grid. The preroll absorbs what decoders emit
    /// right after a seek (MP3 gives ~50 ms of silence there: its bit reservoir is empty)
    /// and warms up the resampler; a whole second lies on every integer sample rate's grid,
    /// so the output grid is the whole-file decode's grid. Together: a range decodes to the
    /// very samples of the whole-file decode (tested bit-exact for FLAC, PCM WAV, MP3, Vorbis).
    /// Each output of one ffmpeg has a filter graph of its own, so several inputs decoded by one
    /// process give the samples each gives alone (tested bit-exact too, <see cref="FfmpegGroup"/>).
    /// </remarks>
    internal static void AddOutput(List<string> arguments, int input, long startSample, long? endSample, string output)
    {
        long skipSamples = startSample - SeekSeconds(startSample) * AudioDecoder.SampleRate;
        arguments.AddRange(
        [
            "-map", $"{input}:a:0", // the first audio stream; a file without one fails clearly
            "-ac", "1",
            // Without this ffmpeg downmixes stereo as (L+R)/sqrt(2), which clips and differs
            // from the WAV path; with it stereo is averaged like there, and wider layouts use
            // ffmpeg's matrix scaled so it cannot clip.
            "-rematrix_maxval", "1",
            "-ar", AudioDecoder.SampleRate.ToString(CultureInfo.InvariantCulture),
        ]);
        if (skipSamples > 0)
            arguments.AddRange(["-ss", ExternalTool.Seconds((decimal)skipSamples / AudioDecoder.SampleRate)]);
        if (endSample is long end)
            arguments.AddRange(["-t", ExternalTool.Seconds((decimal)(end - startSample) / AudioDecoder.SampleRate)]);
        AddSink(arguments, output);
    }

    /// <summary>
    /// The output options that write filter-graph output <paramref name="label"/> (16 kHz mono float of the range, cut
    /// in the graph: <see cref="FfmpegGroup.GraphSource"/>) to <paramref name="output"/>.
    /// </summary>
    internal static void AddGraphOutput(List<string> arguments, string label, string output)
    {
        arguments.AddRange(["-map", label]);
        AddSink(arguments, output);
    }

    private static void AddSink(List<string> arguments, string output)
    {
        // On a pipe ffmpeg flushes after every packet by default: a 5-minute MP3 took 11,486 writes of about 1.7 KB,
        // each waking the reader; buffered, 586 writes of 32 KB, and one core decoded six such files in 2.03 s instead of
        // 2.38-2.40 s (the same as to /dev/null, 1.98 s). The samples are the same; only the writes are larger.
        arguments.AddRange(["-flush_packets", "0", "-f", "f32le", output]);
    }

    private static long SeekSeconds(long startSample) => Math.Max(0, startSample / AudioDecoder.SampleRate - PrerollSeconds);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int Read(Span<float> dest)
    {
        switch (_state)
        {
            case State.Completed:
                return 0;
            case State.Faulted:
                _fault!.Throw();
                break;
            case State.Disposed:
                throw new ObjectDisposedException(nameof(FfmpegAudioSource));
        }

        if (dest.IsEmpty)
            return 0;
        if (_remaining == 0)
        {
            Finish();
            return 0;
        }

        Span<byte> bytes = MemoryMarshal.AsBytes(dest[..(int)Math.Min(dest.Length, _remaining)]);
        int got = ReadStdout(bytes);
        if (got == 0)
        {
            Finish();
            return 0;
        }

        // A pipe read may end inside a sample; ffmpeg writes whole samples, so the rest follows.
        while (got % sizeof(float) != 0)
        {
            int more = ReadStdout(bytes.Slice(got, sizeof(float) - got % sizeof(float)));
            if (more == 0)
                break; // a torn last sample at exit is dropped; the next read finishes
            got += more;
        }

        int samples = got / sizeof(float);
        _remaining -= samples;
        return samples;
    }

    public void Dispose()
    {
        if (_state == State.Disposed)
            return;
        _state = State.Disposed;
        _watchdog.Dispose();
        ExternalTool.KillAndReap(_process); // no ffmpeg outlives its source
        _stdout.Dispose();
        _process.Dispose();
        _input?.Dispose();
    }

    /// <summary>Reads of ffmpeg's stdout that returned data, for tests: about one per ffmpeg write.</summary>
    internal int PipeReads { get; private set; }

    private int ReadStdout(Span<byte> bytes)
    {
        Volatile.Write(ref _readStartedAt, Stopwatch.GetTimestamp());
        try
        {
            int got = _stdout.Read(bytes);
            if (got > 0) PipeReads++;
            return got;
        }
        finally
        {
            Volatile.Write(ref _readStartedAt, 0);
        }
    }

    private void OnWatchdog()
    {
        long started = Volatile.Read(ref _readStartedAt);
        if (started == 0 || Stopwatch.GetElapsedTime(started) < _options.ReadTimeout)
            return;
        _timedOut = true;
        ExternalTool.KillQuietly(_process); // the blocked read then sees end of stream
    }

    /// <summary>At end of output: reap ffmpeg and turn its exit into Completed or an exception.</summary>
    private void Finish()
    {
        try
        {
            // Reached the cap: the rest up to -t is a few samples at most; drain it so
            // ffmpeg can exit and report.
            if (_remaining == 0)
            {
                Span<byte> sink = stackalloc byte[4096];
                while (ReadStdout(sink) > 0)
                {
                }
            }

            if (!_process.WaitForExit(WaitMilliseconds()))
            {
                _timedOut = true;
                ExternalTool.KillQuietly(_process);
                _process.WaitForExit();
            }
            _stderrPump.Wait(WaitMilliseconds());
            // ffmpeg starts messages with the input URL; the exception names the path already.
            string tail = StderrTail().Replace(_inputUrl + ": ", "", StringComparison.Ordinal);

            if (_timedOut)
                throw new TimeoutException(
                    $"{_path}: ffmpeg produced no audio for {ExternalTool.Seconds(_options.ReadTimeout)} s and was killed."
                    + (tail.Length > 0 ? " ffmpeg said: " + tail : ""));
            if (_process.ExitCode != 0)
                throw new DecoderExitException(_path, "ffmpeg", _process.ExitCode, tail);
            if (tail.Length > 0 && !_options.TolerateDecodeErrors)
                throw new AudioFormatException(_path, "ffmpeg reported decode errors: " + tail, tail);
            _state = State.Completed;
        }
        catch (Exception e) when (e is AudioFormatException or TimeoutException)
        {
            _state = State.Faulted;
            _fault = ExceptionDispatchInfo.Capture(e);
            throw;
        }
        finally
        {
            _watchdog.Change(Timeout.Infinite, Timeout.Infinite); // no more reads to watch
        }
    }

    private int WaitMilliseconds() =>
        _options.ReadTimeout == Timeout.InfiniteTimeSpan ? Timeout.Infinite : (int)Math.Min(int.MaxValue, _options.ReadTimeout.TotalMilliseconds);

    private async Task PumpStderrAsync()
    {
        var buffer = new char[1024];
        try
        {
            int n;
            while ((n = await _process.StandardError.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                lock (_stderrTail)
                {
                    _stderrTail.Append(buffer, 0, n);
                    if (_stderrTail.Length > 2 * StderrTailChars)
                        _stderrTail.Remove(0, _stderrTail.Length - StderrTailChars);
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // Disposed while ffmpeg was still talking: nobody will read the tail.
        }
    }

    private string StderrTail()
    {
        lock (_stderrTail)
        {
            int start = Math.Max(0, _stderrTail.Length - StderrTailChars);
            string tail = _stderrTail.ToString(start, _stderrTail.Length - start);
            // Start at a line boundary when the tail was cut.
            int newline = start > 0 ? tail.IndexOf('\n') : -1;
            return (newline >= 0 ? tail[(newline + 1)..] : tail).Trim();
        }
    }
}
