using System.Text;
using Workers.Audio.Tests.TestFiles;

namespace Workers.Audio.Tests;

public sealed class WavHeaderTests
{
    [Theory]
    [InlineData(SampleFormat.U8, WavEncoding.Pcm, 8)]
    [InlineData(SampleFormat.S16, WavEncoding.Pcm, 16)]
    [InlineData(SampleFormat.S24, WavEncoding.Pcm, 24)]
    [InlineData(SampleFormat.S32, WavEncoding.Pcm, 32)]
    [InlineData(SampleFormat.F32, WavEncoding.Float, 32)]
    [InlineData(SampleFormat.F64, WavEncoding.Float, 64)]
    public void Reads_every_sample_format(SampleFormat format, WavEncoding encoding, int bits)
    {
        var builder = new WavBuilder { Format = format, SampleRate = 22050, Channels = 3 };
        var header = Read(builder.Build(Signals.Distinct(1000, channels: 3)));

        Assert.Equal(encoding, header.Encoding);
        Assert.Equal(bits, header.BitsPerSample);
        Assert.Equal(3, header.Channels);
        Assert.Equal(22050, header.SampleRate);
        Assert.Equal(3 * bits / 8, header.BlockAlign);
        Assert.Equal(1000L * header.BlockAlign, header.DataLength);
        Assert.Equal(1000L, header.FrameCount);
        Assert.Equal(1000.0 / 22050, header.DurationSeconds);
        Assert.False(header.IsExtensible);
        Assert.False(header.IsTruncated);
        Assert.True(header.CanDecodeDirectly);
    }

    [Theory]
    [InlineData(SampleFormat.S24, WavEncoding.Pcm)]
    [InlineData(SampleFormat.F32, WavEncoding.Float)]
    public void Reads_the_subformat_of_extensible_headers(SampleFormat format, WavEncoding encoding)
    {
        var header = Read(new WavBuilder { Format = format, Extensible = true, Channels = 2 }.Build(Signals.Distinct(10, 2)));

        Assert.True(header.IsExtensible);
        Assert.Equal(encoding, header.Encoding);
        Assert.Equal(encoding == WavEncoding.Pcm ? 1 : 3, header.FormatTag);
    }

    [Fact]
    public void Extensible_header_with_a_foreign_subformat_is_left_to_ffmpeg()
    {
        // Subformat 0x0002 is MS ADPCM: a real format, just not one decoded directly.
        var header = Read(new WavBuilder { Extensible = true, ExtensibleSubformat = 2 }.Build(Signals.Distinct(10)));

        Assert.Equal(WavEncoding.Other, header.Encoding);
        Assert.Equal(2, header.FormatTag);
        Assert.False(header.CanDecodeDirectly);
        Assert.Null(header.DurationSeconds);
    }

    [Fact]
    public void Skips_unknown_and_odd_sized_chunks_before_and_after_fmt()
    {
        var builder = new WavBuilder
        {
            ChunksBeforeFmt = [("JUNK", new byte[27])],
            ChunksBeforeData = [("LIST", Encoding.ASCII.GetBytes("INFOISFT\x05\0\0\0abcd\0")), ("bext", new byte[3])],
            ChunksAfterData = [("id3 ", new byte[100])],
        };
        byte[] file = builder.Build(Signals.Distinct(101));
        var header = Read(file);

        Assert.Equal(101L * 2, header.DataLength);
        // The data starts right after the data chunk header, however many chunks came first.
        int dataChunk = IndexOf(file, "data"u8);
        Assert.Equal(dataChunk + 8, header.DataOffset);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(0xFFFFFFFFu)]
    public void Streamed_data_size_means_until_end_of_file(uint sizeField)
    {
        var header = Read(new WavBuilder { Format = SampleFormat.S24, DataSizeField = sizeField }.Build(Signals.Distinct(333)));

        Assert.True(header.IsStreamedSize);
        Assert.False(header.IsTruncated);
        Assert.Equal(333L * 3, header.DataLength);
        Assert.Equal(333L, header.FrameCount);
    }

    [Fact]
    public void Truncated_data_reports_the_whole_frames_present()
    {
        // 1000 frames declared, 500 frames and 1 byte of a stereo 16-bit frame present.
        var builder = new WavBuilder { Channels = 2, KeepDataBytes = 500 * 4 + 1 };
        var header = Read(builder.Build(Signals.Distinct(1000, 2)));

        Assert.True(header.IsTruncated);
        Assert.Equal(4000L, header.DeclaredDataLength);
        Assert.Equal(2000L, header.DataLength);
        Assert.Equal(500.0 / 16000, header.DurationSeconds);
    }

    [Fact]
    public void Reads_rf64()
    {
        var header = Read(new WavBuilder { Rf64 = true, Format = SampleFormat.F32 }.Build(Signals.Distinct(640)));

        Assert.False(header.IsStreamedSize);
        Assert.Equal(640L * 4, header.DeclaredDataLength);
        Assert.Equal(640L, header.FrameCount);
    }

    [Fact]
    public void Reads_from_a_stream_that_cannot_seek()
    {
        var builder = new WavBuilder { ChunksBeforeData = [("LIST", new byte[5000])] };
        byte[] file = builder.Build(Signals.Distinct(100));
        var header = WavHeader.Read(new ForwardOnlyStream(file), "pipe");

        Assert.Equal(200L, header.DataLength);
        Assert.Equal(IndexOf(file, "data"u8) + 8, header.DataOffset);

        var streamed = WavHeader.Read(new ForwardOnlyStream(new WavBuilder { DataSizeField = 0 }.Build(Signals.Distinct(100))), "pipe");
        Assert.Null(streamed.DataLength); // unknowable without reading to the end
    }

    [Fact]
    public void Leaves_the_stream_at_the_first_audio_byte()
    {
        byte[] file = new WavBuilder { ChunksBeforeData = [("fact", new byte[4])] }.Build(Signals.Distinct(10));
        using var stream = new MemoryStream(file);
        var header = WavHeader.Read(stream);

        Assert.Equal(header.DataOffset, stream.Position);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("text")]
    [InlineData("empty")]
    public void Not_a_wav_file(string kind)
    {
        byte[] bytes = kind switch
        {
            "garbage" => Enumerable.Range(0, 500).Select(i => (byte)(i * 37 + 11)).ToArray(),
            "text" => Encoding.UTF8.GetBytes("this is a text file that someone named speech.wav\n"),
            _ => [],
        };

        var e = Assert.Throws<AudioFormatException>(() => WavHeader.Read(new MemoryStream(bytes), "/corpus/a.wav"));

        Assert.Equal("not a WAV file: RIFF header missing", e.Reason);
        Assert.Equal("/corpus/a.wav", e.Path);
        Assert.Equal("/corpus/a.wav: not a WAV file: RIFF header missing", e.Message);
    }

    [Fact]
    public void Riff_file_of_another_kind()
    {
        byte[] avi = [.. "RIFF"u8, 100, 0, 0, 0, .. "AVI LIST"u8, 0, 0, 0, 0];

        var e = Assert.Throws<AudioFormatException>(() => WavHeader.Read(new MemoryStream(avi), "x.wav"));

        Assert.Equal("not a WAV file: RIFF form type is 'AVI ', expected 'WAVE'", e.Reason);
    }

    [Theory]
    [InlineData(6)]   // inside the RIFF header
    [InlineData(16)]  // inside the fmt chunk header
    [InlineData(30)]  // inside the fmt chunk body
    [InlineData(38)]  // inside the data chunk header
    public void Truncated_header(int keep)
    {
        byte[] file = new WavBuilder().Build(Signals.Distinct(100))[..keep];

        var e = Assert.Throws<AudioFormatException>(() => WavHeader.Read(new MemoryStream(file), "cut.wav"));

        Assert.StartsWith("truncated WAV header", e.Reason);
    }

    [Fact]
    public void Header_without_data_chunk()
    {
        byte[] file = new WavBuilder().Build(Signals.Distinct(10))[..36]; // RIFF + fmt, nothing else

        var e = Assert.Throws<AudioFormatException>(() => WavHeader.Read(new MemoryStream(file), "h.wav"));

        Assert.Equal("truncated WAV header: no data chunk", e.Reason);
    }

    [Fact]
    public void Chunk_running_past_the_end_of_file()
    {
        byte[] file = [.. "RIFF"u8, 0, 0, 0, 0, .. "WAVE"u8, .. "LIST"u8, 0, 0, 1, 0, 1, 2, 3];

        var e = Assert.Throws<AudioFormatException>(() => WavHeader.Read(new MemoryStream(file), "l.wav"));

        Assert.Equal("truncated WAV header: 'LIST' chunk runs past the end of the file", e.Reason);
    }

    [Fact]
    public void Data_before_fmt()
    {
        byte[] file = [.. "RIFF"u8, 0, 0, 0, 0, .. "WAVE"u8, .. "data"u8, 4, 0, 0, 0, 1, 2, 3, 4];

        var e = Assert.Throws<AudioFormatException>(() => WavHeader.Read(new MemoryStream(file), "d.wav"));

        Assert.Equal("malformed WAV header: data chunk before fmt chunk", e.Reason);
    }

    [Fact]
    public void Inconsistent_block_align()
    {
        byte[] file = new WavBuilder { Channels = 2 }.Build(Signals.Distinct(10, 2));
        file[20 + 12] = 2; // block align 2 where 2 channels of 16 bits need 4

        var e = Assert.Throws<AudioFormatException>(() => WavHeader.Read(new MemoryStream(file), "b.wav"));

        Assert.Equal("malformed fmt chunk: block align 2, expected 4 for 2 channel(s) of 16 bits", e.Reason);
    }

    [Fact]
    public void Zero_channels()
    {
        byte[] file = new WavBuilder().Build(Signals.Distinct(10));
        file[20 + 2] = 0;

        var e = Assert.Throws<AudioFormatException>(() => WavHeader.Read(new MemoryStream(file), "z.wav"));

        Assert.Equal("malformed fmt chunk: 0 channels", e.Reason);
    }

    [Fact]
    public void Extensible_tag_without_its_extension()
    {
        byte[] file = new WavBuilder().Build(Signals.Distinct(10));
        file[20] = 0xFE;
        file[21] = 0xFF; // 16-byte fmt chunk claiming WAVE_FORMAT_EXTENSIBLE

        var e = Assert.Throws<AudioFormatException>(() => WavHeader.Read(new MemoryStream(file), "e.wav"));

        Assert.Equal("malformed fmt chunk: WAVE_FORMAT_EXTENSIBLE without its 22-byte extension", e.Reason);
    }

    private static WavHeader Read(byte[] file) => WavHeader.Read(new MemoryStream(file), "test.wav");

    private static int IndexOf(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle);

    /// <summary>A pipe-like stream: reads forward, cannot seek or tell its length.</summary>
    private sealed class ForwardOnlyStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _inner = new(bytes);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        // At most 7 bytes a read, like a slow pipe, to exercise partial reads.
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 7));

        public override int Read(Span<byte> buffer) => _inner.Read(buffer[..Math.Min(buffer.Length, 7)]);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
