using System.Buffers.Binary;

namespace Workers.Audio;

/// <summary>
/// The durations that FLAC, Ogg Opus and MP3 files state exactly in their headers, read in this
/// process: a FLAC STREAMINFO's sample count, an Opus stream's last granule position, an MP3's
/// Xing/Info frame count. Each is what ffprobe reports for the file (it reads the same fields; for Opus
/// ffprobe also counts the 6.5 ms pre-skip the decoder drops, and this does not), and
/// costs a few small reads instead of an ffprobe start (60-90 ms of dynamic loading, measured; a
/// folder of 10-second clips spent longer being enqueued than being processed).
/// </summary>
/// <remarks>
/// Null whenever a header does not say it exactly and simply, so that ffprobe decides, with its own
/// messages: a FLAC written to a pipe (no sample count), an MP3 without a Xing/Info frame or with
/// anything but a frame where the first one should be, Ogg Vorbis, an Ogg holding several streams,
/// one chained to another or one whose audio does not start at zero, any header that is cut short.
/// </remarks>
public static class HeaderDuration
{
    /// <summary>The codecs whose headers are read.</summary>
    public enum Codec { Flac, Opus, Mp3 }

    /// <summary>What a header said: the exact sample count at the file's own rate (Opus: 48 kHz), the format the limits
    /// check (rate and channels as stored), and the codec.</summary>
    public readonly record struct Result(long Samples, int SampleRate, int Channels, Codec Format)
    {
        public double Seconds => (double)Samples / SampleRate;
    }

    // Ogg pages are at most 27 + 255 + 255 * 255 bytes: the last whole page lies in this much of the tail.
    private const int MaxOggPage = 27 + 255 + 255 * 255;

    /// <summary>The duration stated by <paramref name="stream"/>'s header (read from its start; the position moves), or null.</summary>
    public static Result? TryRead(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        try
        {
            Span<byte> head = stackalloc byte[10];
            if (ReadAt(stream, 0, head) < head.Length) return null;
            long start = 0;
            if (head[..3].SequenceEqual("ID3"u8)) // an ID3v2 tag before the audio: its size is syncsafe
            {
                start = 10 + (head[6] << 21 | head[7] << 14 | head[8] << 7 | head[9]) + ((head[5] & 0x10) != 0 ? 10 : 0);
                if ((head[6] | head[7] | head[8] | head[9]) >= 0x80 || ReadAt(stream, start, head[..4]) < 4) return null;
            }
            if (head[..4].SequenceEqual("fLaC"u8)) return Flac(stream, start);
            if (start == 0 && head[..4].SequenceEqual("OggS"u8)) return OggOpus(stream);
            if (head[0] == 0xFF && (head[1] & 0xE0) == 0xE0) return Mp3(stream, start);
            return null;
        }
        catch (IOException)
        {
            return null; // ffprobe reads it again and says what is wrong
        }
    }

    /// <summary>STREAMINFO, which FLAC requires as the first metadata block: 20-bit rate, 3-bit channels - 1, 36-bit sample count.</summary>
    private static Result? Flac(Stream stream, long start)
    {
        Span<byte> block = stackalloc byte[4 + 4 + 34];
        if (ReadAt(stream, start, block) < block.Length || (block[4] & 0x7F) != 0 || (block[5] << 16 | block[6] << 8 | block[7]) != 34) return null;
        ulong bits = BinaryPrimitives.ReadUInt64BigEndian(block[18..]);
        int rate = (int)(bits >> 44);
        int channels = (int)((bits >> 41) & 7) + 1;
        long samples = (long)(bits & 0xF_FFFF_FFFF);
        return rate > 0 && samples > 0 ? new Result(samples, rate, channels, Codec.Flac) : null;
    }

    /// <summary>
    /// Ogg Opus: (last granule - pre-skip) / 48 kHz, when the file is one Opus stream from its start. The first
    /// audio page's granule must equal the samples its packets hold (the stream starts at zero), and the last page
    /// must be of the same stream; both pages' checksums must hold, so no "OggS" inside packet data is taken for one.
    /// </summary>
    private static Result? OggOpus(Stream stream)
    {
        long length = stream.Length;
        var first = OggPage.Read(stream, 0);
        if (first is not { Bos: true, PacketCount: 1 } || first.Body.Length < 19 || !first.Body.AsSpan(0, 8).SequenceEqual("OpusHead"u8))
            return null;
        int channels = first.Body[9];
        if (channels == 0) return null;
        int preSkip = BinaryPrimitives.ReadUInt16LittleEndian(first.Body.AsSpan(10));

        // The comment header's pages, then the first page whose granule is set: the first audio page.
        long at = first.Size;
        OggPage? page;
        do
        {
            page = OggPage.Read(stream, at);
            if (page is null || page.Serial != first.Serial || page.Bos) return null; // several streams, or cut short
            at += page.Size;
        }
        while (page.Granule is 0 or -1 && at < length);
        if (page.Granule <= 0 || page.Granule != page.OpusSamples()) return null; // starts later than zero: ffprobe knows how

        var tail = new byte[(int)Math.Min(length, MaxOggPage)];
        if (ReadAt(stream, length - tail.Length, tail) < tail.Length) return null;
        for (int i = tail.Length - 27; i >= 0; i--)
        {
            if (tail[i] != 'O' || !tail.AsSpan(i, 4).SequenceEqual("OggS"u8)) continue;
            var last = OggPage.Parse(tail.AsSpan(i));
            if (last is null || last.Granule == -1) continue;
            if (last.Serial != first.Serial) return null; // chained: another stream follows
            long samples = last.Granule - preSkip;
            return samples > 0 ? new Result(samples, 48000, channels, Codec.Opus) : null;
        }
        return null;
    }

    /// <summary>
    /// An MP3 whose first frame (where the audio starts, after any ID3v2 tag) carries a Xing or Info frame count:
    /// frames x samples per frame / rate, as ffprobe computes it. Layer III only.
    /// </summary>
    private static Result? Mp3(Stream stream, long start)
    {
        Span<byte> frame = stackalloc byte[4 + 32 + 8];
        if (ReadAt(stream, start, frame) < frame.Length) return null;
        int version = (frame[1] >> 3) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
        int layer = (frame[1] >> 1) & 3;   // 1: Layer III
        int bitrateIndex = frame[2] >> 4;
        int rateIndex = (frame[2] >> 2) & 3;
        bool mono = (frame[3] >> 6) == 3;
        if (version == 1 || layer != 1 || bitrateIndex is 0 or 15 || rateIndex == 3) return null;
        int rate = rateIndex switch { 0 => 44100, 1 => 48000, _ => 32000 } >> (version == 3 ? 0 : version == 2 ? 1 : 2);
        int samplesPerFrame = version == 3 ? 1152 : 576;
        int sideInfo = version == 3 ? (mono ? 17 : 32) : (mono ? 9 : 17);
        var tag = frame.Slice(4 + sideInfo, 8);
        if (!tag[..4].SequenceEqual("Xing"u8) && !tag[..4].SequenceEqual("Info"u8)) return null;
        if ((BinaryPrimitives.ReadUInt32BigEndian(tag[4..]) & 1) == 0) return null; // no frame count
        Span<byte> count = stackalloc byte[4];
        if (ReadAt(stream, start + 4 + sideInfo + 8, count) < 4) return null;
        long frames = BinaryPrimitives.ReadUInt32BigEndian(count);
        return frames > 0 ? new Result(frames * samplesPerFrame, rate, mono ? 1 : 2, Codec.Mp3) : null;
    }

    private static int ReadAt(Stream stream, long position, Span<byte> buffer)
    {
        if (position < 0 || position >= stream.Length) return 0;
        stream.Position = position;
        return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
    }

    /// <summary>One Ogg page: header fields, its packets' body bytes, its size.</summary>
    private sealed class OggPage
    {
        public bool Bos { get; private init; }
        /// <summary>The page begins with the rest of a packet begun on the page before.</summary>
        public bool Continued { get; private init; }
        public long Granule { get; private init; }
        public uint Serial { get; private init; }
        public byte[] Body { get; private init; } = [];
        /// <summary>Bytes of the whole page, header included.</summary>
        public int Size { get; private init; }
        /// <summary>Where each complete packet starts in <see cref="Body"/>, and where the last one ends.</summary>
        private int[] _packetStarts = [];
        public int PacketCount => _packetStarts.Length - 1;

        public static OggPage? Read(Stream stream, long at)
        {
            var header = new byte[27 + 255];
            int got = ReadAt(stream, at, header);
            if (got < 27 || got < 27 + header[26]) return null;
            int size = 27 + header[26];
            for (int i = 0; i < header[26]; i++) size += header[27 + i];
            var page = new byte[size];
            return ReadAt(stream, at, page) < size ? null : Parse(page);
        }

        /// <summary>The page at the start of <paramref name="bytes"/>, if its header is sound and its checksum holds.</summary>
        public static OggPage? Parse(ReadOnlySpan<byte> bytes)
        {
            if (bytes.Length < 27 || !bytes[..4].SequenceEqual("OggS"u8) || bytes[4] != 0) return null;
            int segments = bytes[26];
            if (bytes.Length < 27 + segments) return null;
            var lacing = bytes.Slice(27, segments);
            int bodyLength = 0;
            var starts = new List<int> { 0 };
            foreach (var l in lacing)
            {
                bodyLength += l;
                if (l < 255) starts.Add(bodyLength); // a lacing value under 255 ends a packet
            }
            int size = 27 + segments + bodyLength;
            if (bytes.Length < size || Crc(bytes[..size]) != BinaryPrimitives.ReadUInt32LittleEndian(bytes[22..])) return null;
            return new OggPage
            {
                Continued = (bytes[5] & 1) != 0,
                Bos = (bytes[5] & 2) != 0,
                Granule = BinaryPrimitives.ReadInt64LittleEndian(bytes[6..]),
                Serial = BinaryPrimitives.ReadUInt32LittleEndian(bytes[14..]),
                Body = bytes.Slice(27 + segments, bodyLength).ToArray(),
                Size = size,
                _packetStarts = [.. starts],
            };
        }

        /// <summary>Samples (at 48 kHz) the page's complete Opus packets decode to, from each packet's TOC byte (RFC 6716, 3.1); -1 if one is malformed.</summary>
        public long OpusSamples()
        {
            if (Continued) return -1;
            long total = 0;
            for (int p = 0; p < PacketCount; p++)
            {
                int at = _packetStarts[p];
                if (_packetStarts[p + 1] - at < 1) return -1;
                int toc = Body[at];
                int config = toc >> 3;
                int frameSamples = config < 12 ? SilkSamples[config & 3]  // SILK: 10, 20, 40, 60 ms
                    : config < 16 ? 480 << (config & 1)                   // hybrid: 10, 20 ms
                    : 120 << (config & 3);                                // CELT: 2.5, 5, 10, 20 ms
                int frames = (toc & 3) switch
                {
                    0 => 1,
                    1 or 2 => 2,
                    _ => _packetStarts[p + 1] - at >= 2 ? Body[at + 1] & 0x3F : -1,
                };
                if (frames <= 0) return -1;
                total += (long)frames * frameSamples;
            }
            return total;
        }

        private static readonly int[] SilkSamples = [480, 960, 1920, 2880];

        private static readonly uint[] CrcTable = MakeCrcTable();

        private static uint[] MakeCrcTable()
        {
            var table = new uint[256];
            for (uint i = 0; i < 256; i++)
            {
                uint r = i << 24;
                for (int k = 0; k < 8; k++) r = (r & 0x8000_0000) != 0 ? (r << 1) ^ 0x04C1_1DB7 : r << 1;
                table[i] = r;
            }
            return table;
        }

        /// <summary>Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, zero start) of a page with its checksum field taken as zero.</summary>
        private static uint Crc(ReadOnlySpan<byte> page)
        {
            uint crc = 0;
            for (int i = 0; i < page.Length; i++)
                crc = (crc << 8) ^ CrcTable[(crc >> 24) ^ (i is >= 22 and < 26 ? 0u : page[i])];
            return crc;
        }
    }
}
