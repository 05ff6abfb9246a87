using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Workers.Audio;

/// <summary>
/// Several files decoded by one ffmpeg process (<see cref="AudioDecoder.OpenGroup"/>), each read through this
/// process's descriptor as <see cref="FfmpegAudioSource"/> does, and one output per file, written as 16 kHz
/// mono f32le to a file of its own, holding the very samples the single-file path gives.
/// </summary>
/// <remarks>
/// A file decoded from its start whose header says it holds one audio stream (WAV, and FLAC, MP3 with a Xing/Info
/// frame, single-stream Ogg Opus: <see cref="HeaderDuration"/>) is an <c>amovie</c> source of the filter
/// graph, resampled and downmixed there as the single-file path's output options do. ffmpeg gives every
/// <c>-i</c> input a demuxer thread of its own and passes each packet to the main thread; an <c>amovie</c>
/// source demuxes and decodes in the main thread. 32 ten-second files on one core, median of 4: 16.5 ms a file that
/// way against 20.0 ms as inputs (MP3), 12.1 against 13.4 (FLAC), 22.6 against 28.6 (Opus), the same bytes out; on
/// two busy cores decode alone went from 536x to 1,012x realtime (MP3), 605x to 1,105x (Opus), 997x to 1,176x (FLAC).
/// Every other file is an <c>-i</c> input with the single-file path's arguments: a range that starts past
/// zero needs the input seek, and <c>-map 0:a:0</c> picks the first audio stream where there may be several
/// (<c>amovie</c>'s own stream selection looped over the file endlessly in ffmpeg 5.1, measured; unused).
/// </remarks>
internal static class FfmpegGroup
{
    /// <summary>One file of the group: its index among the caller's ranges, its opened, checked stream, and whether it
    /// is decoded as a source of the filter graph (<see cref="IsGraphSource"/>) rather than as an <c>-i</c> input.</summary>
    internal readonly record struct Input(int Index, string Path, CorpusFileStream Stream, long StartSample, long? EndSample, bool GraphSource);

    /// <summary>
    /// Whether a range from <paramref name="startSample"/> of <paramref name="stream"/> can be a source of the filter graph:
    /// it starts at zero, and the file's header says it holds one audio stream: a WAV (<paramref name="wav"/>, its header
    /// already read) or a file whose duration <see cref="HeaderDuration"/> reads. Reads that header, so it is asked where
    /// the file is opened: a read that times out leaves the file to be opened alone.
    /// </summary>
    internal static bool IsGraphSource(CorpusFileStream stream, long startSample, bool wav) =>
        startSample == 0 && (wav || HeaderDuration.TryRead(stream) is not null);

    private static long counter;

    /// <summary>
    /// Runs ffmpeg over <paramref name="inputs"/> to the end and fills <paramref name="sources"/> at their
    /// indexes with readers of its outputs; leaves them null when the run did not end cleanly (exit 0,
    /// nothing on stderr, output growing at least every <see cref="AudioDecoderOptions.ReadTimeout"/>).
    /// </summary>
    public static void Decode(IReadOnlyList<Input> inputs, AudioDecoderOptions options, string folder, IAudioSource?[] sources, CancellationToken ct)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Decoding through ffmpeg reads f32le output and needs a little-endian machine.");
        var run = Interlocked.Increment(ref counter);
        var outputs = inputs.Select((_, k) => System.IO.Path.Combine(folder, $"group-{Environment.ProcessId}-{run}-{k}.f32")).ToArray();
        var arguments = new List<string> { "-nostdin", "-v", "error", "-y" };
        var graph = new List<string>();
        var inputIndex = new int[inputs.Count]; // the -i input each file is, or -1 for a source of the graph
        var inputCount = 0;
        for (var k = 0; k < inputs.Count; k++)
        {
            if (GraphSource(inputs[k]) is { } source)
            {
                graph.Add($"{source}[a{k}]");
                inputIndex[k] = -1;
                continue;
            }
            inputIndex[k] = inputCount++;
            FfmpegAudioSource.AddInput(arguments, FfmpegAudioSource.DescriptorUrl(inputs[k].Stream), inputs[k].StartSample);
        }
        if (graph.Count > 0) arguments.AddRange(["-filter_complex", string.Join(';', graph)]);
        for (var k = 0; k < inputs.Count; k++)
        {
            var output = ExternalTool.InputUrl(outputs[k]); // file:, whatever the temp root's name holds
            if (inputIndex[k] >= 0) FfmpegAudioSource.AddOutput(arguments, inputIndex[k], inputs[k].StartSample, inputs[k].EndSample, output);
            else FfmpegAudioSource.AddGraphOutput(arguments, $"[a{k}]", output);
        }

        var clean = false;
        try
        {
            clean = Run(options, arguments, outputs, MaxBytes(inputs), ct);
            if (!clean) return;
            for (var k = 0; k < inputs.Count; k++)
                sources[inputs[k].Index] = new SampleFileSource(outputs[k], FfmpegAudioSource.SampleCap(inputs[k].StartSample, inputs[k].EndSample));
        }
        finally
        {
            if (!clean)
                foreach (var output in outputs) TryDelete(output);
        }
    }

    /// <summary>
    /// The filter-graph source that decodes <paramref name="input"/> to 16 kHz mono float as the single-file path's
    /// output options do (<c>-ac 1 -rematrix_maxval 1 -ar 16000</c>), or null where it must be an <c>-i</c> input
    /// (<see cref="Input.GraphSource"/> false).
    /// </summary>
    internal static string? GraphSource(Input input)
    {
        if (!input.GraphSource) return null;
        var path = CorpusFileOpener.DescriptorPath(input.Stream.SafeFileHandle);
        // Digits, slashes and lower-case letters only (/proc/N/fd/M), so nothing in it means anything to the graph's parser.
        if (!path.All(c => char.IsAsciiDigit(c) || c == '/' || char.IsAsciiLetterLower(c))) return null;
        var rate = AudioDecoder.SampleRate.ToString(CultureInfo.InvariantCulture);
        // One decoder thread, as an -i input gets (FfmpegAudioSource.DecoderThreads).
        var source = $"amovie=filename={path}:dec_threads={FfmpegAudioSource.DecoderThreads},aresample=rematrix_maxval=1,aformat=sample_fmts=flt:sample_rates={rate}:channel_layouts=mono";
        // Cut by sample count: an amovie source keeps the file's own timestamps (MP3's and Opus's start past zero), so an
        // output -t would cut it up to the encoder's delay early (18 ms of MP3, 6.5 ms of Opus, measured).
        return input.EndSample is long end ? $"{source},atrim=end_sample={end.ToString(CultureInfo.InvariantCulture)}" : source;
    }

    /// <summary>
    /// Bytes the group's outputs may hold together: every range's samples (its -t) and 1 MB. Each output is bounded by
    /// its -t only while the file's timestamps are sane; one that restarts them could otherwise fill the shard's temp
    /// folder (an ffmpeg told to decode 40 s wrote 30,000 s in 20 s that way, measured with amovie sources).
    /// Unbounded when a range runs to the end of its file: nothing says how long that is.
    /// </summary>
    private static long MaxBytes(IReadOnlyList<Input> inputs)
    {
        long samples = 0;
        foreach (var input in inputs)
        {
            long cap = FfmpegAudioSource.SampleCap(input.StartSample, input.EndSample);
            if (cap == long.MaxValue) return long.MaxValue;
            samples += cap;
        }
        return samples * sizeof(float) + (1 << 20);
    }

    // True when ffmpeg exited 0 and said nothing; kills it on cancellation (rethrown), when its outputs stop growing
    // or when they grow past maxBytes.
    private static bool Run(AudioDecoderOptions options, List<string> arguments, string[] outputs, long maxBytes, CancellationToken ct)
    {
        using var process = ExternalTool.TryStart(options.FfmpegPath, arguments, out _);
        if (process is null) return false; // opened alone, each file says why ffmpeg cannot start
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        var lastGrowth = Stopwatch.GetTimestamp();
        long written = 0;
        try
        {
            while (!process.WaitForExit(50))
            {
                ct.ThrowIfCancellationRequested();
                var now = Written(outputs);
                if (now > maxBytes) return false; // more than its ranges hold: killed below, and each file decoded alone
                if (now != written) { written = now; lastGrowth = Stopwatch.GetTimestamp(); }
                else if (options.ReadTimeout != Timeout.InfiniteTimeSpan && Stopwatch.GetElapsedTime(lastGrowth) >= options.ReadTimeout)
                    return false; // hung: killed below
            }
            process.WaitForExit(); // and its output streams closed
            return process.ExitCode == 0 && stderr.Wait(TimeSpan.FromSeconds(5)) && stderr.Result.Trim().Length == 0;
        }
        finally
        {
            ExternalTool.KillAndReap(process); // no ffmpeg outlives its group
        }
    }

    private static long Written(string[] outputs)
    {
        long sum = 0;
        foreach (var o in outputs)
        {
            try { sum += new FileInfo(o).Length; }
            catch (IOException) { }
        }
        return sum;
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* the shard's folder goes with the shard */ }
    }

    /// <summary>One output of a group: f32le samples read from its file, at most <c>cap</c>; the file is deleted on dispose.</summary>
    private sealed class SampleFileSource(string path, long cap) : IAudioSource
    {
        private readonly FileStream _file = new(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 0);
        private long _remaining = cap;

        public int SampleRate => AudioDecoder.SampleRate;

        public int Read(Span<float> dest)
        {
            if (dest.IsEmpty || _remaining == 0) return 0;
            var bytes = MemoryMarshal.AsBytes(dest[..(int)Math.Min(dest.Length, _remaining)]);
            // Whole: a regular file returns all that is asked for up to its end, and ffmpeg wrote whole samples.
            int got = _file.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
            got -= got % sizeof(float);
            _remaining -= got / sizeof(float);
            return got / sizeof(float);
        }

        public void Dispose()
        {
            _file.Dispose();
            TryDelete(path);
        }
    }
}
