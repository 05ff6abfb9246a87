using System.Buffers.Binary;

namespace Workers.Cli.Demo;

/// <summary>
/// Writes a small generated corpus: 16 kHz mono 16-bit WAV files of voiced-like bursts (a
/// harmonic tone with syllable-rate amplitude modulation) separated by silences of known length,
/// plus one file longer than the demo's shard size so it is split across shards.
/// Deterministic for a given seed.
/// </summary>
public static class DemoCorpus
{
    public const int SampleRate = 16000;

    public static IReadOnlyList<string> Write(string folder, int files = 24, double longFileSeconds = 720, int seed = 7)
    {
        Directory.CreateDirectory(folder);
        var rng = new Random(seed);
        var written = new List<string>();
        for (var i = 0; i < files; i++)
        {
            var seconds = 5 + rng.NextDouble() * 55;
            var path = Path.Combine(folder, $"speaker{i % 4:00}", $"utt{i:0000}.wav");
            WriteFile(path, seconds, rng);
            written.Add(path);
        }
        var longPath = Path.Combine(folder, "long", "lecture.wav");
        WriteFile(longPath, longFileSeconds, rng);
        written.Add(longPath);
        return written;
    }

    private static void WriteFile(string path, double seconds, Random rng)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var total = (int)(seconds * SampleRate);
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        Span<byte> header = stackalloc byte[44];
        "RIFF"u8.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], 36 + total * 2);
        "WAVEfmt "u8.CopyTo(header[8..]);
        BinaryPrimitives.WriteInt32LittleEndian(header[16..], 16);
        BinaryPrimitives.WriteInt16LittleEndian(header[20..], 1);
        BinaryPrimitives.WriteInt16LittleEndian(header[22..], 1);
        BinaryPrimitives.WriteInt32LittleEndian(header[24..], SampleRate);
        BinaryPrimitives.WriteInt32LittleEndian(header[28..], SampleRate * 2);
        BinaryPrimitives.WriteInt16LittleEndian(header[32..], 2);
        BinaryPrimitives.WriteInt16LittleEndian(header[34..], 16);
        "data"u8.CopyTo(header[36..]);
        BinaryPrimitives.WriteInt32LittleEndian(header[40..], total * 2);
        fs.Write(header);

        var buffer = new byte[SampleRate * 2];
        var n = 0;
        var speaking = false;
        var segmentLeft = (int)(SampleRate * (0.3 + rng.NextDouble()));
        var f0 = 110 + rng.NextDouble() * 120;
        var phase = 0.0;
        while (n < total)
        {
            var chunk = Math.Min(buffer.Length / 2, total - n);
            for (var k = 0; k < chunk; k++, n++)
            {
                if (--segmentLeft <= 0)
                {
                    speaking = !speaking;
                    segmentLeft = (int)(SampleRate * (speaking ? 0.8 + rng.NextDouble() * 2.5 : 0.4 + rng.NextDouble() * 1.2));
                    f0 = 110 + rng.NextDouble() * 120;
                }
                double v = 0;
                if (speaking)
                {
                    phase += 2 * Math.PI * f0 / SampleRate;
                    var t = (double)n / SampleRate;
                    var envelope = 0.55 + 0.45 * Math.Sin(2 * Math.PI * 4 * t);
                    v = envelope * (0.5 * Math.Sin(phase) + 0.25 * Math.Sin(2 * phase) + 0.12 * Math.Sin(3 * phase)) + 0.02 * (rng.NextDouble() - 0.5);
                }
                else v = 0.001 * (rng.NextDouble() - 0.5);
                BinaryPrimitives.WriteInt16LittleEndian(buffer.AsSpan(k * 2), (short)Math.Clamp(v * 20000, short.MinValue, short.MaxValue));
            }
            fs.Write(buffer, 0, chunk * 2);
        }
    }
}
