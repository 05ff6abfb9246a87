using System.Buffers.Binary;

namespace Workers.Audio;

/// <summary>Writes 16-bit mono PCM WAV files: generated corpora, exported segments, test audio.</summary>
public static class Pcm16Wav
{
    public const int HeaderBytes = 44;

    /// <summary>The canonical 44-byte header for <paramref name="samples"/> mono 16-bit samples.</summary>
    public static void WriteHeader(Stream stream, int sampleRate, long samples)
    {
        Span<byte> h = stackalloc byte[HeaderBytes];
        "RIFF"u8.CopyTo(h);
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], (int)Math.Min(uint.MaxValue, 36 + samples * 2));
        "WAVEfmt "u8.CopyTo(h[8..]);
        BinaryPrimitives.WriteInt32LittleEndian(h[16..], 16);
        BinaryPrimitives.WriteInt16LittleEndian(h[20..], 1);
        BinaryPrimitives.WriteInt16LittleEndian(h[22..], 1);
        BinaryPrimitives.WriteInt32LittleEndian(h[24..], sampleRate);
        BinaryPrimitives.WriteInt32LittleEndian(h[28..], sampleRate * 2);
        BinaryPrimitives.WriteInt16LittleEndian(h[32..], 2);
        BinaryPrimitives.WriteInt16LittleEndian(h[34..], 16);
        "data"u8.CopyTo(h[36..]);
        BinaryPrimitives.WriteInt32LittleEndian(h[40..], (int)Math.Min(uint.MaxValue, samples * 2));
        stream.Write(h);
    }

    /// <summary>A whole file of <paramref name="samples"/> samples, each from <paramref name="sample"/>(index).</summary>
    public static void Write(string path, int sampleRate, int samples, Func<int, short> sample)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        WriteHeader(fs, sampleRate, samples);
        var buf = new byte[8192];
        for (var i = 0; i < samples;)
        {
            var n = Math.Min(buf.Length / 2, samples - i);
            for (var k = 0; k < n; k++) BinaryPrimitives.WriteInt16LittleEndian(buf.AsSpan(k * 2), sample(i + k));
            fs.Write(buf, 0, n * 2);
            i += n;
        }
    }
}
