using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Workers.Audio;

/// <summary>
/// Several files decoded by one ffmpeg process (<see cref="AudioDecoder.OpenGroup"/>): one input per file,
/// read through this process's descriptor as <see cref="FfmpegAudioSource"/> does, and one output per
/// input, written as 16 kHz mono f32le to a file of its own, each with the arguments the single-file path
/// gives it, so each holds the very samples that path gives.
/// </summary>
internal static class FfmpegGroup
{
    /// <summary>One file of the group: its index among the caller's ranges and its opened, checked stream.</summary>
    internal readonly record struct Input(int Index, string Path, CorpusFileStream Stream, long StartSample, long? EndSample);

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
        foreach (var input in inputs)
            FfmpegAudioSource.AddInput(arguments, FfmpegAudioSource.DescriptorUrl(input.Stream), input.StartSample);
        for (var k = 0; k < inputs.Count; k++)
            FfmpegAudioSource.AddOutput(arguments, k, inputs[k].StartSample, inputs[k].EndSample, ExternalTool.InputUrl(outputs[k])); // file:, whatever the temp root's name holds

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
