using Workers.Audio.Tests.TestFiles;

namespace Workers.Audio.Tests;

/// <summary>The fast path: 16 kHz PCM and float WAV read without ffmpeg.</summary>
public sealed class WavAudioSourceTests : IDisposable
{
    // Every test here would fail if it reached ffmpeg.
    private static readonly AudioDecoderOptions NoFfmpeg = new() { FfmpegPath = "/nonexistent/ffmpeg" };

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(SampleFormat.U8)]
    [InlineData(SampleFormat.S16)]
    [InlineData(SampleFormat.S24)]
    [InlineData(SampleFormat.S32)]
    [InlineData(SampleFormat.F32)]
    [InlineData(SampleFormat.F64)]
    public void Mono_samples_decode_exactly(SampleFormat format)
    {
        double[] signal = Signals.Distinct(20_000);
        string path = new WavBuilder { Format = format }.Write(_dir.File("m.wav"), signal);

        float[] decoded = Signals.Decode(path, options: NoFfmpeg);

        Assert.Equal(signal.Select(x => WavBuilder.Expected(format, x)), decoded);
        Assert.Equal(-1f, decoded[0]);
    }

    [Theory]
    [InlineData(SampleFormat.S16, 2, false)]
    [InlineData(SampleFormat.S24, 6, false)]
    [InlineData(SampleFormat.F32, 2, true)]
    [InlineData(SampleFormat.S32, 3, true)]
    [InlineData(SampleFormat.U8, 2, false)]
    public void Channels_are_averaged_to_mono(SampleFormat format, int channels, bool extensible)
    {
        double[] signal = Signals.Distinct(5_000, channels);
        string path = new WavBuilder { Format = format, Channels = channels, Extensible = extensible }.Write(_dir.File("c.wav"), signal);

        float[] decoded = Signals.Decode(path, options: NoFfmpeg);

        Assert.Equal(5_000, decoded.Length);
        for (int i = 0; i < decoded.Length; i++)
        {
            double mean = 0;
            for (int c = 0; c < channels; c++)
                mean += WavBuilder.Expected(format, signal[i * channels + c]);
            Assert.Equal(mean / channels, decoded[i], 1e-6);
        }
    }

    [Fact]
    public void Extra_odd_sized_chunks_are_not_audio()
    {
        double[] signal = Signals.Distinct(1_001);
        string path = new WavBuilder
        {
            Format = SampleFormat.U8, // odd data size: the pad byte after it is no sample either
            ChunksBeforeFmt = [("JUNK", new byte[3])],
            ChunksBeforeData = [("LIST", new byte[17]), ("fact", new byte[4])],
            ChunksAfterData = [("LIST", Enumerable.Repeat((byte)0x7F, 301).ToArray())],
        }.Write(_dir.File("chunks.wav"), signal);

        float[] decoded = Signals.Decode(path, options: NoFfmpeg);

        Assert.Equal(signal.Select(x => WavBuilder.Expected(SampleFormat.U8, x)), decoded);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(0xFFFFFFFFu)]
    public void Streamed_size_reads_until_end_of_file(uint sizeField)
    {
        double[] signal = Signals.Distinct(17_001);
        string path = new WavBuilder { Format = SampleFormat.F32, DataSizeField = sizeField }.Write(_dir.File("s.wav"), signal);

        float[] decoded = Signals.Decode(path, options: NoFfmpeg);

        Assert.Equal(signal.Select(x => (float)x), decoded);
    }

    [Fact]
    public void Truncated_file_gives_the_whole_frames_present()
    {
        double[] signal = Signals.Distinct(10_000, 2);
        // 4,000 whole stereo 24-bit frames plus 4 bytes of the next.
        string path = new WavBuilder { Format = SampleFormat.S24, Channels = 2, KeepDataBytes = 4_000 * 6 + 4 }
            .Write(_dir.File("t.wav"), signal);

        float[] decoded = Signals.Decode(path, options: NoFfmpeg);

        Assert.Equal(4_000, decoded.Length);
        Assert.Equal((WavBuilder.Expected(SampleFormat.S24, signal[7_998]) + WavBuilder.Expected(SampleFormat.S24, signal[7_999])) / 2, decoded[^1], 1e-6);
    }

    [Fact]
    public void Rf64_decodes()
    {
        double[] signal = Signals.Distinct(3_000);
        string path = new WavBuilder { Rf64 = true }.Write(_dir.File("r.wav"), signal);

        Assert.Equal(signal.Select(x => WavBuilder.Expected(SampleFormat.S16, x)), Signals.Decode(path, options: NoFfmpeg));
    }

    [Fact]
    public void Header_only_file_has_no_samples()
    {
        string path = new WavBuilder().Write(_dir.File("h.wav"), []);

        Assert.Empty(Signals.Decode(path, options: NoFfmpeg));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(32_769)]   // crosses the 64 KB read blocks at odd places
    [InlineData(200_000)]  // larger than the file
    public void Any_buffer_size_reads_the_same_samples(int bufferSize)
    {
        double[] signal = Signals.Distinct(70_001);
        string path = new WavBuilder { Format = SampleFormat.S24 }.Write(_dir.File("b.wav"), signal);

        using var source = AudioDecoder.Open(path, options: NoFfmpeg);
        float[] decoded = Signals.ReadAll(source, bufferSize);

        Assert.Equal(signal.Select(x => WavBuilder.Expected(SampleFormat.S24, x)), decoded);
        Assert.Equal(0, source.Read(new float[10])); // stays at the end
    }

    [Fact]
    public void Range_starts_and_ends_on_the_rounded_sample()
    {
        double[] signal = Signals.Distinct(48_000);
        string path = new WavBuilder { Format = SampleFormat.F32 }.Write(_dir.File("r.wav"), signal);

        // round(0.53128 * 16000) = round(8500.48) = 8500; round(1.00003 * 16000) = round(16000.48) = 16000.
        float[] part = Signals.Decode(path, 0.53128, 1.00003, NoFfmpeg);

        Assert.Equal(signal[8_500..16_000].Select(x => (float)x), part);
    }

    [Fact]
    public void Ranges_concatenate_to_the_whole_file_sample_for_sample()
    {
        double[] signal = Signals.Distinct(3 * 16_000 + 77, channels: 2);
        string path = new WavBuilder { Channels = 2 }.Write(_dir.File("whole.wav"), signal);
        double[] cuts = [0, 0.1234567, 0.5, 1.00003125, 2.7, 2.999];

        float[] whole = Signals.Decode(path, options: NoFfmpeg);
        var joined = new List<float>();
        for (int i = 0; i < cuts.Length; i++)
            joined.AddRange(Signals.Decode(path, cuts[i], i + 1 < cuts.Length ? cuts[i + 1] : null, NoFfmpeg));

        Assert.Equal(3 * 16_000 + 77, whole.Length);
        Assert.Equal(whole, joined);
    }

    [Fact]
    public void Ranges_past_the_end_are_clamped()
    {
        string path = new WavBuilder().Write(_dir.File("short.wav"), Signals.Distinct(16_000));

        Assert.Equal(4_000, Signals.Decode(path, 0.75, 99, NoFfmpeg).Length);
        Assert.Empty(Signals.Decode(path, 5, 6, NoFfmpeg));
        Assert.Empty(Signals.Decode(path, 0.5, 0.5, NoFfmpeg));
    }

    [Fact]
    public void Invalid_ranges_are_rejected()
    {
        string path = new WavBuilder().Write(_dir.File("a.wav"), Signals.Distinct(100));

        Assert.Throws<ArgumentOutOfRangeException>(() => AudioDecoder.Open(path, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => AudioDecoder.Open(path, double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => AudioDecoder.Open(path, 2, 1));
    }

    [Fact]
    public void Malformed_wav_fails_at_open_with_path_and_reason()
    {
        string path = _dir.File("bad.wav");
        byte[] file = new WavBuilder { Channels = 2 }.Build(Signals.Distinct(100, 2));
        file[32] = 3; // block align 3 for stereo 16-bit
        File.WriteAllBytes(path, file);

        var e = Assert.Throws<AudioFormatException>(() => AudioDecoder.Open(path, options: NoFfmpeg));

        Assert.Equal(path, e.Path);
        Assert.Equal($"{path}: malformed fmt chunk: block align 3, expected 4 for 2 channel(s) of 16 bits", e.Message);
    }

    [Fact]
    public void Missing_file()
    {
        Assert.Throws<FileNotFoundException>(() => AudioDecoder.Open(_dir.File("nope.wav")));
    }

    [Fact]
    public void Read_after_dispose_throws()
    {
        string path = new WavBuilder().Write(_dir.File("d.wav"), Signals.Distinct(100));
        var source = AudioDecoder.Open(path, options: NoFfmpeg);
        source.Dispose();

        Assert.Throws<ObjectDisposedException>(() => source.Read(new float[10]));
        Assert.Equal(16_000, source.SampleRate);
    }

    [Fact]
    public void Reads_do_not_allocate()
    {
        string path = new WavBuilder().Write(_dir.File("alloc.wav"), Signals.Distinct(160_000));
        using var source = AudioDecoder.Open(path, options: NoFfmpeg);
        var buffer = new float[40];
        source.Read(buffer); // warm up

        long before = GC.GetAllocatedBytesForCurrentThread();
        int reads = 0;
        while (source.Read(buffer) > 0)
            reads++;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(3_999, reads);
        // The runtime may allocate a few KB once while it recompiles hot methods; an
        // allocation per read (24 bytes at the very least) would come to 96 KB or more.
        Assert.True(allocated < 16_384, $"{allocated} bytes allocated over {reads} reads");
    }
}
