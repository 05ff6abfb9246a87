using System.Buffers.Binary;

namespace Workers.Audio.Tests.TestFiles;

/// <summary>
/// Writes WAV files byte by byte, including the odd ones real corpora contain: extensible
/// headers, extra and odd-sized chunks, streamed (unknown) sizes, truncated data.
/// </summary>
public sealed class WavBuilder
{
    private static readonly byte[] GuidTail = [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

    public SampleFormat Format { get; init; } = SampleFormat.S16;

    public int SampleRate { get; init; } = 16000;

    public int Channels { get; init; } = 1;

    public bool Extensible { get; init; }

    /// <summary>The subformat GUID's first four bytes, when <see cref="Extensible"/>; null means PCM or float as fits <see cref="Format"/>.</summary>
    public uint? ExtensibleSubformat { get; init; }

    /// <summary>Written into the data chunk's size field instead of the real size (0, 0xFFFFFFFF, or larger for truncation).</summary>
    public uint? DataSizeField { get; init; }

    /// <summary>Keep only this many bytes of audio data (a truncated file).</summary>
    public int? KeepDataBytes { get; init; }

    /// <summary>Write "RF64" with a ds64 chunk and 0xFFFFFFFF sizes.</summary>
    public bool Rf64 { get; init; }

    public List<(string Id, byte[] Body)> ChunksBeforeFmt { get; init; } = [];

    public List<(string Id, byte[] Body)> ChunksBeforeData { get; init; } = [];

    public List<(string Id, byte[] Body)> ChunksAfterData { get; init; } = [];

    public int BytesPerSample => Format switch
    {
        SampleFormat.U8 => 1,
        SampleFormat.S16 => 2,
        SampleFormat.S24 => 3,
        SampleFormat.S32 or SampleFormat.F32 => 4,
        _ => 8,
    };

    /// <summary>The value the decoder must produce for <paramref name="x"/> written in <paramref name="format"/>.</summary>
    public static float Expected(SampleFormat format, double x) => format switch
    {
        SampleFormat.U8 => (QuantizeU8(x) - 128) / 128f,
        SampleFormat.S16 => Quantize(x, 16) / 32768f,
        SampleFormat.S24 => Quantize(x, 24) / 8388608f,
        SampleFormat.S32 => (float)(Quantize(x, 32) / 2147483648.0),
        SampleFormat.F32 => (float)x,
        _ => (float)x,
    };

    /// <summary>The file's bytes for interleaved samples in [-1, 1].</summary>
    public byte[] Build(ReadOnlySpan<double> interleaved)
    {
        var data = new MemoryStream();
        foreach (double x in interleaved)
            WriteSample(data, x);
        byte[] audio = data.ToArray();
        byte[] kept = KeepDataBytes is int keep ? audio[..keep] : audio;

        var body = new MemoryStream();
        body.Write("WAVE"u8);
        if (Rf64)
        {
            var ds64 = new byte[28];
            BinaryPrimitives.WriteInt64LittleEndian(ds64.AsSpan(8), audio.Length);
            BinaryPrimitives.WriteInt64LittleEndian(ds64.AsSpan(16), interleaved.Length / Channels);
            WriteChunk(body, "ds64", ds64);
        }
        foreach (var (id, chunk) in ChunksBeforeFmt)
            WriteChunk(body, id, chunk);
        WriteChunk(body, "fmt ", FmtBody());
        foreach (var (id, chunk) in ChunksBeforeData)
            WriteChunk(body, id, chunk);
        body.Write("data"u8);
        WriteUInt32(body, Rf64 ? uint.MaxValue : DataSizeField ?? (uint)audio.Length);
        body.Write(kept);
        if (KeepDataBytes is null)
        {
            if (audio.Length % 2 == 1)
                body.WriteByte(0);
            foreach (var (id, chunk) in ChunksAfterData)
                WriteChunk(body, id, chunk);
        }

        var file = new MemoryStream();
        file.Write(Rf64 ? "RF64"u8 : "RIFF"u8);
        WriteUInt32(file, Rf64 ? uint.MaxValue : (uint)body.Length);
        body.Position = 0;
        body.CopyTo(file);
        return file.ToArray();
    }

    public string Write(string path, ReadOnlySpan<double> interleaved)
    {
        File.WriteAllBytes(path, Build(interleaved));
        return path;
    }

    private byte[] FmtBody()
    {
        bool isFloat = Format is SampleFormat.F32 or SampleFormat.F64;
        int bits = BytesPerSample * 8;
        var fmt = new MemoryStream();
        WriteUInt16(fmt, Extensible ? (ushort)0xFFFE : isFloat ? (ushort)3 : (ushort)1);
        WriteUInt16(fmt, (ushort)Channels);
        WriteUInt32(fmt, (uint)SampleRate);
        WriteUInt32(fmt, (uint)(SampleRate * Channels * BytesPerSample));
        WriteUInt16(fmt, (ushort)(Channels * BytesPerSample));
        WriteUInt16(fmt, (ushort)bits);
        if (Extensible)
        {
            WriteUInt16(fmt, 22);
            WriteUInt16(fmt, (ushort)bits);
            WriteUInt32(fmt, Channels == 2 ? 3u : 0u);
            WriteUInt32(fmt, ExtensibleSubformat ?? (isFloat ? 3u : 1u));
            fmt.Write(GuidTail);
        }
        else if (isFloat)
        {
            WriteUInt16(fmt, 0); // cbSize, as most float writers do
        }
        return fmt.ToArray();
    }

    private void WriteSample(Stream s, double x)
    {
        Span<byte> b = stackalloc byte[8];
        switch (Format)
        {
            case SampleFormat.U8: s.WriteByte((byte)QuantizeU8(x)); break;
            case SampleFormat.S16: BinaryPrimitives.WriteInt16LittleEndian(b, (short)Quantize(x, 16)); s.Write(b[..2]); break;
            case SampleFormat.S24:
                int v = (int)Quantize(x, 24);
                s.WriteByte((byte)v); s.WriteByte((byte)(v >> 8)); s.WriteByte((byte)(v >> 16));
                break;
            case SampleFormat.S32: BinaryPrimitives.WriteInt32LittleEndian(b, (int)Quantize(x, 32)); s.Write(b[..4]); break;
            case SampleFormat.F32: BinaryPrimitives.WriteSingleLittleEndian(b, (float)x); s.Write(b[..4]); break;
            case SampleFormat.F64: BinaryPrimitives.WriteDoubleLittleEndian(b, x); s.Write(b); break;
        }
    }

    private static long Quantize(double x, int bits)
    {
        double full = Math.Pow(2, bits - 1);
        return (long)Math.Clamp(Math.Round(x * full), -full, full - 1);
    }

    private static int QuantizeU8(double x) => (int)Math.Clamp(Math.Round(x * 128) + 128, 0, 255);

    private static void WriteChunk(Stream s, string id, byte[] body)
    {
        s.Write(System.Text.Encoding.ASCII.GetBytes(id));
        WriteUInt32(s, (uint)body.Length);
        s.Write(body);
        if (body.Length % 2 == 1)
            s.WriteByte(0);
    }

    private static void WriteUInt16(Stream s, ushort v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, v);
        s.Write(b);
    }

    private static void WriteUInt32(Stream s, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        s.Write(b);
    }
}
