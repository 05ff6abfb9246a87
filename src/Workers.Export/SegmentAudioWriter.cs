using System.Buffers.Binary;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Workers.Audio;
using Workers.Postgres.Export;

namespace Workers.Export;

public enum SegmentAudioFormat
{
    /// <summary>16 kHz mono 16-bit PCM WAV.</summary>
    Wav,

    /// <summary>16 kHz mono 16-bit FLAC, encoded by ffmpeg.</summary>
    Flac,
}

/// <summary>
/// Writes each exported segment's audio as its own file, 16 kHz mono 16-bit, under an output
/// folder: <c>&lt;file path without extension&gt;/&lt;start_ms&gt;-&lt;end_ms&gt;.wav</c> (see
/// <see cref="SegmentAudioPaths"/>). Segments must come in export order (by file, then start).
/// </summary>
/// <remarks>
/// <para>
/// A file is decoded once, front to back, across its segments: the stretch between two
/// segments is decoded and dropped, which costs far less than starting ffmpeg again and seeking,
/// up to <see cref="ReopenGapSeconds"/>; a longer gap, or a segment that starts before the
/// previous one ended, opens the file again at the segment's start. Sample positions follow
/// <see cref="AudioDecoder"/>'s rule (first sample <c>round(start * 16000)</c>, end excluded),
/// so a segment's audio is the same whichever way it was reached, and lasts
/// <c>round(end * 16000) - round(start * 16000)</c> samples.
/// </para>
/// <para>
/// A source file that cannot be decoded (missing, corrupt, shorter than its segments) is a
/// warning naming the file: its remaining segments get no audio and the export goes on. A
/// segment file that cannot be written (disk full, permission, ffmpeg failing) is an
/// <see cref="ExportOutputException"/>: every later segment would fail the same way. Each file
/// is written under a temporary name and renamed, so a segment file either is whole or does
/// not exist.
/// </para>
/// <para>
/// FLAC is encoded by ffmpeg in batches of up to <see cref="FlacBatchSegments"/> segments: one
/// ffmpeg run reads the batch's samples from a pipe and cuts them into one file per segment
/// (<c>asplit</c>, then <c>atrim</c> by sample number: exact). Starting ffmpeg costs about 70 ms
/// of CPU, far more than encoding a few seconds of speech, so one run per segment managed 14
/// segments/s here; batched, the start-up is shared. Batches are encoded on the thread pool,
/// up to <see cref="MaxFlacBatchesInFlight"/> at once, while the next one is decoded. A
/// segment's path is returned when its samples are in a batch, before its file exists;
/// <see cref="Complete"/> waits for every batch, and a batch that fails stops the export, so
/// every path handed out is written or the export fails.
/// </para>
/// </remarks>
public sealed class SegmentAudioWriter : IDisposable
{
    /// <summary>Gaps up to this long are decoded through rather than seeked over.</summary>
    public const double ReopenGapSeconds = 30;

    /// <summary>Most segments encoded by one ffmpeg run (FLAC).</summary>
    public const int FlacBatchSegments = 64;

    /// <summary>A FLAC batch is encoded once it holds this much audio (8 MiB, about 4.4 min), whatever its segment count.</summary>
    public const int FlacBatchBytes = 8 << 20;

    /// <summary>FLAC batches encoded at once: one ffmpeg each, so about one core each.</summary>
    public static readonly int MaxFlacBatchesInFlight = Math.Clamp(Environment.ProcessorCount, 1, 8);

    /// <summary>Warnings after this many files are counted, not printed.</summary>
    public const int MaxFileWarnings = 50;

    private const int Rate = AudioDecoder.SampleRate;

    /// <summary>A source that ends at most this short of a segment's end (1 ms) is padded with silence:
    /// resamplers may round a file's length by a few samples.</summary>
    private const int TolerableShortfallSamples = Rate / 1000;

    private readonly string _root;
    private readonly string _rootWithSlash;
    private readonly string _corpusRoot;
    private readonly SegmentAudioFormat _format;
    private readonly string _extension;
    private readonly TextWriter _warnings;
    private readonly AudioDecoderOptions _decoder;
    private readonly SegmentAudioPaths _paths = new();
    private readonly float[] _samples = new float[8192];
    private readonly byte[] _bytes = new byte[8192 * 2];

    private int _fileIndex = -1;
    private string _file = "";
    private string _fullPath = "";
    private string _folder = "";
    private bool _fileFailed;
    private IAudioSource? _source;
    private long _position; // sample index of the next sample _source returns

    // FLAC: the batch being filled (16-bit PCM, segment after segment, and where each segment lies
    // in it), and the batches being encoded, oldest first. A batch handed to an encoding task is
    // never touched again by this thread; the next batch gets new buffers.
    private MemoryStream _flacBatch = new();
    private List<(string Relative, long FirstSample, long Samples)> _flacEntries = [];
    private readonly Queue<Task> _flacEncoding = new();
    private bool _completed;

    /// <param name="outputDir">Folder the segment files go under; created if missing.</param>
    /// <param name="corpusRootDir">The corpus's root folder: relative file paths are relative to it.</param>
    /// <param name="warnings">Where per-file warnings go (stderr).</param>
    /// <exception cref="ExportOutputException">The folder cannot be created, or FLAC is asked for and ffmpeg cannot run.</exception>
    public SegmentAudioWriter(string outputDir, string corpusRootDir, SegmentAudioFormat format, TextWriter warnings, AudioDecoderOptions? decoder = null)
    {
        _root = Path.GetFullPath(outputDir);
        _rootWithSlash = Path.TrimEndingDirectorySeparator(_root) + "/";
        _corpusRoot = corpusRootDir;
        _format = format;
        _extension = format == SegmentAudioFormat.Flac ? ".flac" : ".wav";
        _warnings = warnings;
        _decoder = decoder ?? AudioDecoderOptions.Default;
        _decoder.Validate();
        try
        {
            Directory.CreateDirectory(_root);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ExportOutputException($"cannot create the audio folder '{outputDir}': {e.Message}", e);
        }
        if (format == SegmentAudioFormat.Flac) CheckFlacEncoder();
    }

    /// <summary>The audio folder, absolute.</summary>
    public string Root => _root;

    public long SegmentsWritten { get; private set; }
    public long SegmentsWithoutAudio { get; private set; }
    public int FilesFailed { get; private set; }

    /// <summary>Writes the segment's audio; returns its path relative to the audio folder ('/'-separated), or null when the source could not be decoded.</summary>
    public string? Write(in ExportSegment segment)
    {
        if (_completed) throw new InvalidOperationException("The segment audio writer is complete.");
        if (segment.FileIndex != _fileIndex) StartFile(segment);
        if (_fileFailed)
        {
            SegmentsWithoutAudio++;
            return null;
        }
        long start = ToSample(segment.StartSeconds), end = Math.Max(start, ToSample(segment.EndSeconds));
        var relative = $"{_folder}/{segment.StartMs}-{segment.EndMs}{_extension}";
        try
        {
            PositionAt(segment.StartSeconds, start);
            if (_format == SegmentAudioFormat.Wav) WriteWavFile(Path.Combine(_root, relative), relative, end - start, segment.EndSeconds);
            else AddToFlacBatch(relative, end - start, segment.EndSeconds);
        }
        catch (SourceFailedException e)
        {
            FailFile(e.Message);
            return null;
        }
        SegmentsWritten++;
        if (_flacEntries.Count >= FlacBatchSegments || _flacBatch.Length >= FlacBatchBytes) StartFlacBatch();
        return relative;
    }

    /// <summary>Writes what is still pending (FLAC batches) and waits for it. Call once, after the last <see cref="Write"/>.</summary>
    /// <exception cref="ExportOutputException">A segment file could not be written.</exception>
    public void Complete()
    {
        if (_completed) return;
        _completed = true;
        _source?.Dispose();
        _source = null;
        StartFlacBatch();
        while (_flacEncoding.Count > 0) _flacEncoding.Dequeue().GetAwaiter().GetResult();
    }

    /// <summary>
    /// Releases the source and waits for FLAC batches already being encoded (their failures no
    /// longer matter: the export is failing or was cancelled); a batch not yet started is dropped.
    /// </summary>
    public void Dispose()
    {
        _source?.Dispose();
        _source = null;
        _flacEntries = [];
        try
        {
            Task.WaitAll(_flacEncoding);
        }
        catch (AggregateException)
        {
            // Reported already, or moot.
        }
        _flacEncoding.Clear();
    }

    private static long ToSample(double seconds) => (long)Math.Round(seconds * Rate, MidpointRounding.AwayFromZero);

    private void StartFile(in ExportSegment segment)
    {
        _source?.Dispose();
        _source = null;
        _fileIndex = segment.FileIndex;
        _file = segment.File;
        _fileFailed = false;
        _fullPath = Path.IsPathRooted(segment.File) ? segment.File : Path.Combine(_corpusRoot, segment.File);
        _folder = _paths.FolderFor(segment.File);
        // SegmentAudioPaths leaves no way out of the folder; this guards that promise.
        if (!Path.GetFullPath(Path.Combine(_root, _folder)).StartsWith(_rootWithSlash, StringComparison.Ordinal))
            throw new InvalidOperationException($"Bug: the audio folder for '{segment.File}' ('{_folder}') is outside '{_root}'.");
    }

    private void FailFile(string reason)
    {
        _fileFailed = true;
        _source?.Dispose();
        _source = null;
        SegmentsWithoutAudio++;
        FilesFailed++;
        if (FilesFailed <= MaxFileWarnings)
            _warnings.WriteLine($"warning: no audio for '{_file}': {reason}; its segments are exported without \"audio\"");
        if (FilesFailed == MaxFileWarnings)
            _warnings.WriteLine("warning: further files without audio are counted in the summary, not listed");
    }

    private void PositionAt(double startSeconds, long start)
    {
        if (_source is null || start < _position || start - _position > ReopenGapSeconds * Rate)
        {
            _source?.Dispose();
            _source = null;
            try
            {
                // Confined like a worker's read: a folder swapped for a symlink after enqueue exports nothing from outside.
                _source = AudioDecoder.Open(_fullPath, startSeconds, null, _decoder, Path.IsPathRooted(_file) ? null : _corpusRoot);
            }
            catch (Exception e) when (IsSourceFailure(e))
            {
                throw SourceFailed(e);
            }
            _position = start;
        }
        while (_position < start)
        {
            var got = Read((int)Math.Min(_samples.Length, start - _position));
            if (got == 0) throw new SourceFailedException($"the audio ends at {_position / (double)Rate:0.###} s, before a segment that starts at {startSeconds:0.###} s");
        }
    }

    /// <summary>Reads up to <paramref name="count"/> samples into <see cref="_samples"/>, turning decoder failures into <see cref="SourceFailedException"/>.</summary>
    private int Read(int count)
    {
        int got;
        try
        {
            got = _source!.Read(_samples.AsSpan(0, count));
        }
        catch (Exception e) when (IsSourceFailure(e))
        {
            throw SourceFailed(e);
        }
        _position += got;
        return got;
    }

    private void WriteWavFile(string fullPath, string relative, long samples, double endSeconds)
    {
        // The first block is decoded before anything is created, so a file that fails at once
        // leaves no empty folder behind.
        var primed = samples > 0 ? Read((int)Math.Min(_samples.Length, samples)) : 0;
        var temp = fullPath + ".partial";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(fullPath)!);
            using (var output = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 64 * 1024))
            {
                WriteWavHeader(output, samples);
                CopySamples(output, samples, primed, endSeconds);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new ExportOutputException($"cannot write segment audio '{relative}' under '{_root}': {e.Message}", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>
    /// Copies the next <paramref name="samples"/> samples of the source to <paramref name="output"/> as 16-bit PCM;
    /// the first <paramref name="primed"/> of them are already in <see cref="_samples"/>.
    /// </summary>
    private void CopySamples(Stream output, long samples, int primed, double endSeconds)
    {
        var left = samples;
        while (left > 0)
        {
            var got = primed > 0 ? primed : Read((int)Math.Min(_samples.Length, left));
            primed = 0;
            if (got == 0)
            {
                if (left > TolerableShortfallSamples)
                    throw new SourceFailedException($"the audio ends at {_position / (double)Rate:0.###} s, before a segment that ends at {endSeconds:0.###} s (the file is shorter than when it was processed)");
                Array.Clear(_samples, 0, (int)left);
                got = (int)left;
            }
            var bytes = _bytes.AsSpan(0, got * 2);
            for (var i = 0; i < got; i++)
                BinaryPrimitives.WriteInt16LittleEndian(bytes[(i * 2)..], ToPcm16(_samples[i]));
            output.Write(bytes);
            left -= got;
        }
    }

    /// <summary>The decoder reads 16-bit PCM as <c>sample / 32768</c>; scaling back by 32768 makes a 16-bit source's samples come out unchanged.</summary>
    private static short ToPcm16(float x) => (short)Math.Clamp(MathF.Round(x * 32768f), -32768f, 32767f);

    private static void WriteWavHeader(Stream output, long samples)
    {
        if (samples * 2 > uint.MaxValue - 36) throw new IOException($"a segment of {samples / (double)Rate:0} s is too long for a WAV file");
        Pcm16Wav.WriteHeader(output, Rate, samples);
    }

    private void AddToFlacBatch(string relative, long samples, double endSeconds)
    {
        var offset = _flacBatch.Length;
        try
        {
            CopySamples(_flacBatch, samples, 0, endSeconds);
        }
        catch (SourceFailedException)
        {
            _flacBatch.SetLength(offset); // the batch keeps only whole segments
            throw;
        }
        _flacEntries.Add((relative, offset / 2, samples));
    }

    /// <summary>Hands the batch being filled to an encoding task; first waits for the oldest one if <see cref="MaxFlacBatchesInFlight"/> are running (and rethrows its failure).</summary>
    private void StartFlacBatch()
    {
        if (_flacEntries.Count == 0) return;
        while (_flacEncoding.Count >= MaxFlacBatchesInFlight) _flacEncoding.Dequeue().GetAwaiter().GetResult();
        var (pcm, entries) = (_flacBatch, _flacEntries);
        _flacBatch = new MemoryStream();
        _flacEntries = [];
        _flacEncoding.Enqueue(Task.Run(() => EncodeFlacBatch(pcm, entries)));
    }

    /// <summary>One ffmpeg run: the batch's samples in through a pipe, one FLAC file per segment out.</summary>
    private void EncodeFlacBatch(MemoryStream pcm, List<(string Relative, long FirstSample, long Samples)> entries)
    {
        var temps = entries.Select(e => Path.Combine(_root, e.Relative) + ".partial").ToList();
        try
        {
            var graph = new StringBuilder($"[0:a]asplit={entries.Count}");
            for (var i = 0; i < entries.Count; i++) graph.Append(CultureInfo.InvariantCulture, $"[s{i}]");
            for (var i = 0; i < entries.Count; i++)
            {
                var (_, first, samples) = entries[i];
                graph.Append(CultureInfo.InvariantCulture, $";[s{i}]atrim=start_sample={first}:end_sample={first + samples},asetpts=PTS-STARTPTS[o{i}]");
            }
            var args = new List<string> { "-hide_banner", "-nostats", "-v", "error", "-f", "s16le", "-ar", "16000", "-ac", "1", "-i", "pipe:0", "-filter_complex", graph.ToString() };
            for (var i = 0; i < temps.Count; i++)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(temps[i])!);
                args.AddRange(["-map", $"[o{i}]", "-c:a", "flac", "-f", "flac", "-y", "file:" + temps[i]]);
            }

            using var ffmpeg = StartFfmpeg(args);
            var stderr = ffmpeg.StandardError.ReadToEndAsync();
            try
            {
                using var stdin = ffmpeg.StandardInput.BaseStream;
                stdin.Write(pcm.GetBuffer(), 0, (int)pcm.Length);
            }
            catch (IOException e)
            {
                // ffmpeg stopped reading: its stderr says why better than the broken pipe does.
                KillQuietly(ffmpeg);
                throw new IOException($"ffmpeg stopped while encoding FLAC: {FirstLine(stderr.GetAwaiter().GetResult())} ({e.Message})", e);
            }
            ffmpeg.WaitForExit();
            if (ffmpeg.ExitCode != 0)
                throw new IOException($"ffmpeg could not encode FLAC (exit {ffmpeg.ExitCode}): {FirstLine(stderr.GetAwaiter().GetResult())}");
            for (var i = 0; i < temps.Count; i++) File.Move(temps[i], Path.Combine(_root, entries[i].Relative), overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ExportOutputException)
        {
            foreach (var t in temps) TryDelete(t);
            if (e is ExportOutputException) throw;
            throw new ExportOutputException(
                $"cannot write segment audio '{entries[0].Relative}'{(entries.Count > 1 ? $" (and {entries.Count - 1} more)" : "")} under '{_root}': {e.Message}", e);
        }
        finally
        {
            pcm.Dispose();
        }
    }

    private Process StartFfmpeg(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(_decoder.FfmpegPath)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = false,
            RedirectStandardError = true,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            return Process.Start(psi)!;
        }
        catch (Win32Exception e)
        {
            throw new ExportOutputException($"--audio-format flac needs ffmpeg ('{_decoder.FfmpegPath}'), which cannot be started: {e.Message}. Install the Debian package ffmpeg, or use --audio-format wav.", e);
        }
    }

    private void CheckFlacEncoder()
    {
        using var p = StartFfmpeg(["-hide_banner", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0.01", "-c:a", "flac", "-f", "null", "-"]);
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new ExportOutputException($"--audio-format flac: ffmpeg cannot encode FLAC here: {FirstLine(stderr)}");
    }

    private static bool IsSourceFailure(Exception e) =>
        e is AudioFormatException or CorpusFileRejectedException or IOException or UnauthorizedAccessException or TimeoutException or InvalidOperationException or ArgumentOutOfRangeException;

    private static SourceFailedException SourceFailed(Exception e) =>
        new(e switch { AudioFormatException f => f.Reason, CorpusFileRejectedException r => r.Reason, _ => e.Message }, e);

    private static string FirstLine(string text) =>
        text.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "(no message)";

    private static void KillQuietly(Process p)
    {
        try { p.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { /* already exited */ }
        catch (Win32Exception) { /* exited between the check and the signal */ }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* best effort: a stray .partial file says what happened */ }
    }

    /// <summary>The source file failed; the message is the reason, without the path.</summary>
    private sealed class SourceFailedException(string message, Exception? inner = null) : Exception(message, inner);
}
