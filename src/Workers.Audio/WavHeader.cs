using System.Buffers.Binary;
using System.Text;

namespace Workers.Audio;

/// <summary>
/// The format and the location of the audio data of a RIFF/WAVE (or RF64) file, read by walking
/// its chunks up to the data chunk and no further, so a header is read without touching the audio.
/// </summary>
public sealed class WavHeader
{
    private const ushort FormatPcm = 0x0001;
    private const ushort FormatIeeeFloat = 0x0003;
    private const ushort FormatExtensible = 0xFFFE;

    // The fmt chunk is at most 40 bytes for every format we decode; larger ones are skipped past.
    private const int MaxFmtBytesRead = 40;

    // KSDATAFORMAT_SUBTYPE_* GUIDs are {XXXXXXXX-0000-0010-8000-00AA00389B71}, XXXXXXXX being
    // the classic format tag; these are bytes 4..15 of the GUID as stored in the file.
    private static ReadOnlySpan<byte> SubformatGuidTail =>
        [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

    private WavHeader()
    {
    }

    /// <summary>The format tag; for WAVE_FORMAT_EXTENSIBLE, the tag of its subformat GUID.</summary>
    public int FormatTag { get; private init; }

    /// <summary>True when the fmt chunk is WAVE_FORMAT_EXTENSIBLE.</summary>
    public bool IsExtensible { get; private init; }

    public WavEncoding Encoding { get; private init; }

    public int Channels { get; private init; }

    public int SampleRate { get; private init; }

    /// <summary>Bits of one sample's container (e.g. 24 for packed 24-bit).</summary>
    public int BitsPerSample { get; private init; }

    /// <summary>Bytes of one frame (one sample of every channel).</summary>
    public int BlockAlign { get; private init; }

    /// <summary>Position of the first audio byte in the stream.</summary>
    public long DataOffset { get; private init; }

    /// <summary>
    /// The size field of the data chunk (for RF64, from the ds64 chunk); 0 or 0xFFFFFFFF means
    /// the writer did not know it (a streamed WAV), see <see cref="IsStreamedSize"/>.
    /// </summary>
    public long DeclaredDataLength { get; private init; }

    /// <summary>True when the data chunk size is 0 or 0xFFFFFFFF: the data runs until end of file.</summary>
    public bool IsStreamedSize { get; private init; }

    /// <summary>
    /// Bytes of audio actually readable: the declared size, or what the file holds when that is
    /// less (truncated) or unknown (streamed), rounded down to whole frames for PCM and float.
    /// Null only for a streamed size read from a stream that cannot seek.
    /// </summary>
    public long? DataLength { get; private init; }

    /// <summary>True when the file holds less audio than the data chunk declares.</summary>
    public bool IsTruncated { get; private init; }

    /// <summary>True for PCM 8/16/24/32-bit and float 32/64-bit, which are decoded without ffmpeg.</summary>
    public bool CanDecodeDirectly => Encoding != WavEncoding.Other;

    /// <summary>Whole frames in <see cref="DataLength"/>; null when that is unknown or the encoding is <see cref="WavEncoding.Other"/>.</summary>
    public long? FrameCount => CanDecodeDirectly && DataLength is long length ? length / BlockAlign : null;

    /// <summary>Duration from the header; null when <see cref="FrameCount"/> is.</summary>
    public double? DurationSeconds => FrameCount is long frames ? (double)frames / SampleRate : null;

    /// <summary>True when <paramref name="start"/> begins with "RIFF" or "RF64" followed by a size and "WAVE".</summary>
    public static bool HasWaveMagic(ReadOnlySpan<byte> start) =>
        start.Length >= 12
        && (start[..4].SequenceEqual("RIFF"u8) || start[..4].SequenceEqual("RF64"u8))
        && start[8..12].SequenceEqual("WAVE"u8);

    /// <summary>
    /// Reads the header from the stream's current position, leaving the stream positioned at
    /// the first audio byte.
    /// </summary>
    /// <param name="stream">The file; seekable streams get exact data lengths and fast chunk skips.</param>
    /// <param name="path">Named in errors; defaults to the <see cref="FileStream"/>'s name.</param>
    /// <exception cref="AudioFormatException">The stream is not a WAV file or its header is malformed.</exception>
    public static WavHeader Read(Stream stream, string? path = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        path ??= (stream as FileStream)?.Name ?? "(stream)";
        long position = stream.CanSeek ? stream.Position : 0;

        Span<byte> riff = stackalloc byte[12];
        int got = stream.ReadAtLeast(riff, riff.Length, throwOnEndOfStream: false);
        bool isRf64 = got >= 4 && riff[..4].SequenceEqual("RF64"u8);
        if (got < 4 || !(isRf64 || riff[..4].SequenceEqual("RIFF"u8)))
            throw Malformed(path, "not a WAV file: RIFF header missing");
        if (got < 12)
            throw Malformed(path, "truncated WAV header");
        if (!riff[8..12].SequenceEqual("WAVE"u8))
            throw Malformed(path, $"not a WAV file: RIFF form type is '{Printable(riff[8..12])}', expected 'WAVE'");
        position += 12;

        Span<byte> chunk = stackalloc byte[8];
        Span<byte> fmtBytes = stackalloc byte[MaxFmtBytesRead];
        Span<byte> ds64 = stackalloc byte[16];
        WavHeader? format = null;
        long? rf64DataSize = null;
        while (true)
        {
            got = stream.ReadAtLeast(chunk, chunk.Length, throwOnEndOfStream: false);
            if (got == 0)
                throw Malformed(path, format is null ? "truncated WAV header: no fmt chunk" : "truncated WAV header: no data chunk");
            if (got < chunk.Length)
                throw Malformed(path, "truncated WAV header");
            position += 8;
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(chunk[4..]);
            ReadOnlySpan<byte> id = chunk[..4];

            if (id.SequenceEqual("data"u8))
            {
                if (format is null)
                    throw Malformed(path, "malformed WAV header: data chunk before fmt chunk");
                return WithData(format, stream, position, size, rf64DataSize);
            }

            long skip = size + (size & 1); // chunks are padded to an even size
            if (id.SequenceEqual("fmt "u8))
            {
                if (size < 16)
                    throw Malformed(path, $"malformed fmt chunk: {size} bytes, expected at least 16");
                int take = (int)Math.Min(size, MaxFmtBytesRead);
                if (stream.ReadAtLeast(fmtBytes[..take], take, throwOnEndOfStream: false) < take)
                    throw Malformed(path, "truncated WAV header");
                format = ParseFmt(fmtBytes[..take], path);
                skip -= take;
            }
            else if (isRf64 && id.SequenceEqual("ds64"u8))
            {
                // ds64: RIFF size (8), data size (8), sample count (8), table length (4), table.
                if (size < 16)
                    throw Malformed(path, $"malformed ds64 chunk: {size} bytes, expected at least 16");
                if (stream.ReadAtLeast(ds64, ds64.Length, throwOnEndOfStream: false) < ds64.Length)
                    throw Malformed(path, "truncated WAV header");
                rf64DataSize = BinaryPrimitives.ReadInt64LittleEndian(ds64[8..]);
                skip -= 16;
            }

            position += size + (size & 1);
            Skip(stream, skip, path, id);
        }
    }

    private static WavHeader ParseFmt(ReadOnlySpan<byte> fmt, string path)
    {
        int tag = BinaryPrimitives.ReadUInt16LittleEndian(fmt);
        int channels = BinaryPrimitives.ReadUInt16LittleEndian(fmt[2..]);
        uint sampleRate = BinaryPrimitives.ReadUInt32LittleEndian(fmt[4..]);
        int blockAlign = BinaryPrimitives.ReadUInt16LittleEndian(fmt[12..]);
        int bits = BinaryPrimitives.ReadUInt16LittleEndian(fmt[14..]);

        if (channels == 0)
            throw Malformed(path, "malformed fmt chunk: 0 channels");
        if (sampleRate == 0 || sampleRate > int.MaxValue)
            throw Malformed(path, $"malformed fmt chunk: sample rate {sampleRate}");

        bool extensible = tag == FormatExtensible;
        int effectiveTag = tag;
        if (extensible)
        {
            // cbSize (2), valid bits (2), channel mask (4), subformat GUID (16).
            if (fmt.Length < 40 || BinaryPrimitives.ReadUInt16LittleEndian(fmt[16..]) < 22)
                throw Malformed(path, "malformed fmt chunk: WAVE_FORMAT_EXTENSIBLE without its 22-byte extension");
            ReadOnlySpan<byte> guid = fmt[24..40];
            effectiveTag = guid[4..].SequenceEqual(SubformatGuidTail)
                ? (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(guid), int.MaxValue)
                : FormatExtensible;
        }

        WavEncoding encoding = (effectiveTag, bits) switch
        {
            (FormatPcm, 8 or 16 or 24 or 32) => WavEncoding.Pcm,
            (FormatIeeeFloat, 32 or 64) => WavEncoding.Float,
            _ => WavEncoding.Other,
        };
        if (encoding != WavEncoding.Other && blockAlign != channels * (bits / 8))
            throw Malformed(path,
                $"malformed fmt chunk: block align {blockAlign}, expected {channels * (bits / 8)} for {channels} channel(s) of {bits} bits");
        if (blockAlign == 0)
            throw Malformed(path, "malformed fmt chunk: block align 0");

        return new WavHeader
        {
            FormatTag = effectiveTag,
            IsExtensible = extensible,
            Encoding = encoding,
            Channels = channels,
            SampleRate = (int)sampleRate,
            BitsPerSample = bits,
            BlockAlign = blockAlign,
        };
    }

    private static WavHeader WithData(WavHeader format, Stream stream, long dataOffset, uint sizeField, long? rf64DataSize)
    {
        long declared = sizeField == uint.MaxValue && rf64DataSize is long size64 ? size64 : sizeField;
        bool streamed = declared is 0 or uint.MaxValue;
        long? available = stream.CanSeek ? Math.Max(0, stream.Length - dataOffset) : null;

        long? length = (streamed, available) switch
        {
            (true, _) => available,
            (false, long a) => Math.Min(declared, a),
            (false, null) => declared,
        };
        if (length is long l && format.Encoding != WavEncoding.Other)
            length = l - l % format.BlockAlign;

        return new WavHeader
        {
            FormatTag = format.FormatTag,
            IsExtensible = format.IsExtensible,
            Encoding = format.Encoding,
            Channels = format.Channels,
            SampleRate = format.SampleRate,
            BitsPerSample = format.BitsPerSample,
            BlockAlign = format.BlockAlign,
            DataOffset = dataOffset,
            DeclaredDataLength = declared,
            IsStreamedSize = streamed,
            DataLength = length,
            IsTruncated = !streamed && available is long av && av < declared,
        };
    }

    private static void Skip(Stream stream, long count, string path, ReadOnlySpan<byte> id)
    {
        if (count <= 0)
            return;
        if (stream.CanSeek)
        {
            if (stream.Position + count > stream.Length)
                throw Malformed(path, $"truncated WAV header: '{Printable(id)}' chunk runs past the end of the file");
            stream.Seek(count, SeekOrigin.Current);
            return;
        }

        Span<byte> sink = stackalloc byte[4096];
        while (count > 0)
        {
            int n = stream.Read(sink[..(int)Math.Min(count, sink.Length)]);
            if (n == 0)
                throw Malformed(path, $"truncated WAV header: '{Printable(id)}' chunk runs past the end of the stream");
            count -= n;
        }
    }

    private static string Printable(ReadOnlySpan<byte> fourCc)
    {
        var builder = new StringBuilder(4);
        foreach (byte b in fourCc)
            builder.Append(b is >= 0x20 and < 0x7F ? (char)b : '?');
        return builder.ToString();
    }

    private static AudioFormatException Malformed(string path, string reason) => new(path, reason);
}
