using System.Buffers.Binary;
using System.Diagnostics;

namespace Workers.Audio.Synthesis;

/// <summary>A stretch of a generated file where an utterance was placed (seconds).</summary>
public readonly record struct SpokenInterval(double Start, double End);

/// <summary>
/// Generates speech corpora with known ground truth: real synthesized sentences (espeak-ng) placed
/// between silences of known length, written as 16 kHz WAV (and optionally re-encoded by ffmpeg).
/// Used by the demo, the benchmarks and the segmentation tests. Utterances are synthesized once per
/// generator and reused, so hours of audio cost seconds.
/// </summary>
public sealed class SpeechCorpusGenerator
{
    public const int SampleRate = 16000;

    private static readonly string[] Sentences =
    [
        "The quick brown fox jumps over the lazy dog.",
        "Speech data engineers process thousands of hours of audio every week.",
        "Please call Stella and ask her to bring these things with her from the store.",
        "A shard that fails is retried with backoff, then marked as dead.",
        "Six spoons of fresh snow peas, five thick slabs of blue cheese.",
        "We also need a small plastic snake and a big toy frog for the kids.",
        "The weather tomorrow will be cloudy with a chance of rain in the afternoon.",
        "Numbers like one hundred and twenty three are read out in full.",
        "She sells sea shells by the sea shore.",
        "Every audio second ends in a result or in a listed failure.",
    ];

    private readonly List<float[]> _utterances = [];

    /// <summary>Synthesizes the sentences with espeak-ng (Debian package espeak-ng) and decodes them to 16 kHz.</summary>
    public SpeechCorpusGenerator(string workDir, int voices = 2)
    {
        Directory.CreateDirectory(workDir);
        var variants = new[] { "en-us", "en-gb", "en-us+f3", "en-gb+m3" };
        for (var v = 0; v < voices; v++)
            for (var i = 0; i < Sentences.Length; i++)
            {
                var wav = Path.Combine(workDir, $"utt-{v}-{i}.wav");
                if (!File.Exists(wav)) Speak(Sentences[i], variants[v % variants.Length], 150 + 15 * v, wav);
                _utterances.Add(Trim(ReadAll(wav)));
            }
    }

    /// <summary>Writes a 16 kHz 16-bit mono WAV of about <paramref name="seconds"/>: utterances separated
    /// by silences of <paramref name="minGap"/>..<paramref name="maxGap"/> s over faint noise.
    /// Returns where speech was placed.</summary>
    public IReadOnlyList<SpokenInterval> WriteWav(string path, double seconds, Random rng, double minGap = 0.6, double maxGap = 2.5)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var total = (long)(seconds * SampleRate);
        var truth = new List<SpokenInterval>();
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        WriteHeader(fs, total);
        var buf = new byte[8192 * 2];
        long pos = 0;
        void Emit(ReadOnlySpan<float> samples)
        {
            var offset = 0;
            while (offset < samples.Length && pos < total)
            {
                var n = (int)Math.Min(Math.Min(samples.Length - offset, buf.Length / 2), total - pos);
                for (var k = 0; k < n; k++)
                {
                    var v = samples[offset + k] + 0.0005f * (float)(rng.NextDouble() - 0.5);
                    BinaryPrimitives.WriteInt16LittleEndian(buf.AsSpan(k * 2), (short)Math.Clamp(v * 32767f, -32768f, 32767f));
                }
                fs.Write(buf, 0, n * 2);
                offset += n;
                pos += n;
            }
        }
        var silence = new float[SampleRate];
        while (pos < total)
        {
            var gap = (long)((minGap + rng.NextDouble() * (maxGap - minGap)) * SampleRate);
            while (gap > 0 && pos < total) { var n = (int)Math.Min(gap, silence.Length); Emit(silence.AsSpan(0, n)); gap -= n; }
            if (pos >= total) break;
            var u = _utterances[rng.Next(_utterances.Count)];
            var start = pos;
            Emit(u);
            truth.Add(new SpokenInterval(start / (double)SampleRate, pos / (double)SampleRate));
        }
        return truth;
    }

    /// <summary>Re-encodes <paramref name="wav"/> with ffmpeg to <paramref name="output"/> (format from its extension), optionally at another rate.</summary>
    public static void Encode(string wav, string output, int? sampleRate = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        var args = new List<string> { "-nostdin", "-v", "error", "-y", "-i", wav };
        if (sampleRate is { } r) args.AddRange(["-ar", r.ToString()]);
        args.Add(output);
        Run("ffmpeg", args, "install the Debian package ffmpeg");
    }

    private static void Speak(string text, string voice, int wpm, string wav) =>
        Run("espeak-ng", ["-v", voice, "-s", wpm.ToString(), "-w", wav, text], "install the Debian package espeak-ng");

    private static void Run(string exe, IEnumerable<string> args, string hint)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception) { throw new InvalidOperationException($"{exe} not found: {hint}."); }
        using (p)
        {
            var err = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} failed ({p.ExitCode}): {err.Result}");
        }
    }

    private static float[] ReadAll(string path)
    {
        using var src = AudioDecoder.Open(path);
        var list = new List<float>();
        var buf = new float[16384];
        int n;
        while ((n = src.Read(buf)) > 0) list.AddRange(buf.AsSpan(0, n));
        return list.ToArray();
    }

    /// <summary>Cuts espeak's own leading and trailing silence, so the placed interval is the voice.</summary>
    private static float[] Trim(float[] x)
    {
        const float floor = 0.01f;
        var a = Array.FindIndex(x, v => Math.Abs(v) > floor);
        var b = Array.FindLastIndex(x, v => Math.Abs(v) > floor);
        return a < 0 ? [] : x[a..(b + 1)];
    }

    private static void WriteHeader(Stream s, long samples) => Pcm16Wav.WriteHeader(s, SampleRate, samples);
}
