using Workers.Audio.Tests.TestFiles;

namespace Workers.Audio.Tests;

/// <summary>Everything but 16 kHz PCM WAV: decoded by the real ffmpeg.</summary>
public sealed class FfmpegAudioSourceTests : IClassFixture<EncodedTones>, IDisposable
{
    private const int SamplesPerMs = 16;
    private const int ExpectedSamples = (int)(EncodedTones.Seconds * AudioDecoder.SampleRate);

    private readonly EncodedTones _tones;
    private readonly TempDirectory _dir = new();

    public FfmpegAudioSourceTests(EncodedTones tones)
    {
        _tones = tones;
    }

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, int> Files => new()
    {
        // file, allowed sample count error
        { nameof(EncodedTones.Flac), 0 },
        { nameof(EncodedTones.Wav44k), 0 },
        { nameof(EncodedTones.Wav8k), 0 },
        { nameof(EncodedTones.Mp3), 3 * SamplesPerMs },
        { nameof(EncodedTones.Ogg), 3 * SamplesPerMs },
        { nameof(EncodedTones.MulawWav16k), 0 }, // 16 kHz, but not PCM: ffmpeg, not the fast path
    };

    [Theory]
    [MemberData(nameof(Files))]
    public void Decodes_to_16kHz_with_the_right_length_and_tone(string file, int countTolerance)
    {
        float[] decoded = Signals.Decode(Path(file));

        Assert.InRange(decoded.Length, ExpectedSamples - countTolerance, ExpectedSamples + countTolerance);
        // Away from the edges the tone must be the ideal 440 Hz sine: a wrong rate, a shift
        // or a lost channel shows as a large error (one sample off: 0.086). MP3, Vorbis and
    // mu-law are lossy.
        double worst = MaxError(decoded, 1_000, ExpectedSamples - 1_000, i => EncodedTones.Ideal(i));
        Assert.True(worst < (file is nameof(EncodedTones.Mp3) or nameof(EncodedTones.Ogg) or nameof(EncodedTones.MulawWav16k) ? 0.05 : 0.002), $"max error {worst}");
    }

    [Theory]
    [InlineData(nameof(EncodedTones.StereoWav44k))]
    [InlineData(nameof(EncodedTones.StereoFlac))]
    public void Stereo_is_averaged_like_the_wav_path(string file)
    {
        // Left is the tone, right is silent: the mean is the tone at half amplitude.
        float[] decoded = Signals.Decode(Path(file));

        Assert.Equal(ExpectedSamples, decoded.Length);
        double worst = MaxError(decoded, 1_000, ExpectedSamples - 1_000, i => EncodedTones.Ideal(i) / 2);
        Assert.True(worst < 0.002, $"max error {worst}");
    }

    [Theory]
    [InlineData(nameof(EncodedTones.Flac))]
    [InlineData(nameof(EncodedTones.Wav44k))]
    [InlineData(nameof(EncodedTones.Wav8k))]
    [InlineData(nameof(EncodedTones.StereoFlac))]
    [InlineData(nameof(EncodedTones.Mp3))]
    [InlineData(nameof(EncodedTones.Ogg))]
    public void Ranges_concatenate_to_the_whole_file(string file)
    {
        // Cuts on odd samples and inside the first second (no input seek) as well.
        string path = Path(file);
        double[] cuts = [0, 0.7, 1.5, 2.0000625, 3.2, 4.71];
        float[] whole = Signals.Decode(path);

        var joined = new List<float>();
        for (int i = 0; i < cuts.Length; i++)
        {
            float[] part = Signals.Decode(path, cuts[i], i + 1 < cuts.Length ? cuts[i + 1] : null);
            if (i + 1 < cuts.Length)
                Assert.Equal(AudioDecoder.ToSample(cuts[i + 1]) - AudioDecoder.ToSample(cuts[i]), part.Length);
            joined.AddRange(part);
        }

        Assert.Equal(whole.Length, joined.Count);
        // The same samples as the whole decode, boundaries included: the preroll before each
        // start lets decoder and resampler settle. A range one sample off would err by ~0.09.
        double worst = MaxError(joined.ToArray(), 0, joined.Count, j => whole[j]);
        Assert.True(worst < 1e-3, $"max error {worst} against the whole decode");
    }

    [Theory]
    [InlineData(nameof(EncodedTones.Flac))]
    [InlineData(nameof(EncodedTones.Wav44k))]
    public void Lossless_range_is_sample_exact_against_the_ideal_tone(string file)
    {
        // Starts at 2.2 s = sample 35,200; its sample k must be the tone's sample 35,200 + k.
        float[] part = Signals.Decode(Path(file), 2.2, 3.3);

        Assert.Equal(17_600, part.Length);
        double worst = MaxError(part, 100, part.Length - 100, k => EncodedTones.Ideal(35_200 + k));
        Assert.True(worst < 0.002, $"max error {worst}");
    }

    [Fact]
    public void Range_past_the_end_is_empty()
    {
        Assert.Empty(Signals.Decode(_tones.Flac, 7, 9));
        Assert.Empty(Signals.Decode(_tones.Flac, 7));
        Assert.Equal(16_000, Signals.Decode(_tones.Flac, 4, 60).Length);
    }

    [Fact]
    public void Streamed_size_wav_at_another_rate()
    {
        string path = new WavBuilder { SampleRate = 44100, DataSizeField = 0xFFFFFFFF }
            .Write(_dir.File("streamed44k.wav"), Signals.Sine(44100 * 2, 44100, EncodedTones.Hz, EncodedTones.Amplitude));

        float[] decoded = Signals.Decode(path);

        Assert.Equal(32_000, decoded.Length);
        Assert.True(MaxError(decoded, 500, 31_500, i => EncodedTones.Ideal(i)) < 0.002);
    }

    [Theory]
    [InlineData("text.mp3")]
    [InlineData("garbage.flac")]
    [InlineData("text.wav")]
    public void Unreadable_file_fails_with_ffmpegs_message(string name)
    {
        string path = _dir.File(name);
        if (name.StartsWith("text", StringComparison.Ordinal))
            File.WriteAllText(path, "this is not audio at all\n");
        else
            File.WriteAllBytes(path, Enumerable.Range(0, 5000).Select(i => (byte)(i * 97 + i / 13)).ToArray());

        using var source = AudioDecoder.Open(path);
        var e = Assert.Throws<DecoderExitException>(() => Signals.ReadAll(source)); // an AudioFormatException with the exit typed (issue 14)

        Assert.Equal(path, e.Path);
        Assert.StartsWith("ffmpeg exited with code 1: ", e.Reason);
        Assert.False(string.IsNullOrWhiteSpace(e.ToolOutput)); // ffmpeg's own words, e.g. "Invalid data found when processing input"
        Assert.Equal(e.ToolOutput, e.Reason["ffmpeg exited with code 1: ".Length..]);
        Assert.DoesNotContain("file:", e.Reason); // its echo of the input URL is dropped
        // The failure sticks: reading again says the same, never "end of file".
        Assert.Same(e, Assert.Throws<DecoderExitException>(() => source.Read(new float[10])));
    }

    [Fact]
    public void File_without_audio_stream()
    {
        string png = _dir.File("picture.png");
        Ffmpeg.Run("-f", "lavfi", "-i", "color=c=red:s=16x16", "-frames:v", "1", png);

        var e = Assert.Throws<DecoderExitException>(() => Signals.Decode(png));

        Assert.Contains("matches no streams", e.Reason);
    }

    [Fact]
    public void Decode_errors_in_the_middle_fail_the_file_unless_tolerated()
    {
        string path = CorruptCopy(_tones.Flac, "corrupt.flac", every: 20_000);
        Assert.True(Signals.Decode(_tones.Flac).Length == ExpectedSamples); // the original is fine

        var e = Assert.Throws<AudioFormatException>(() => Signals.Decode(path));
        Assert.StartsWith("ffmpeg reported decode errors: ", e.Reason);

        float[] tolerated = Signals.Decode(path, options: new AudioDecoderOptions { TolerateDecodeErrors = true });
        Assert.InRange(tolerated.Length, 1, ExpectedSamples);
    }

    [Fact]
    public void Stderr_is_drained_so_a_flood_of_errors_cannot_deadlock()
    {
        // 5 min of FLAC damaged every 2 KB: ffmpeg writes ~125 KB of errors, more than a pipe
        // holds (64 KB). If nothing read stderr, ffmpeg would block on it and the read would
        // time out.
        string clean = _dir.File("long.flac");
        Ffmpeg.Run("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=300", "-c:a", "flac", clean);
        string path = CorruptCopy(clean, "flood.flac", every: 2_048);
        var options = new AudioDecoderOptions { ReadTimeout = TimeSpan.FromSeconds(20) };

        var e = Assert.Throws<AudioFormatException>(() => Signals.Decode(path, options: options));

        Assert.StartsWith("ffmpeg reported decode errors: ", e.Reason);
        Assert.InRange(e.ToolOutput!.Length, 100, 4096); // only the tail is kept
    }

    [Fact]
    public void Ffmpeg_writes_its_output_in_large_pieces_not_one_per_packet()
    {
        // On a pipe ffmpeg flushes after every packet unless told not to: 5 s of 44.1 kHz MP3 is 192 packets, and the
        // reader would wake for each (a 5-minute MP3: 11,486 writes, 15% of its decode time). Buffered: 320 KB in 32 KB writes.
        using var source = AudioDecoder.Open(_tones.Mp3);
        var buffer = new float[64 * 1024];
        while (source.Read(buffer) > 0) { }

        Assert.InRange(((FfmpegAudioSource)source).PipeReads, 1, 40);
    }

    [Fact]
    public void Read_timeout_kills_ffmpeg()
    {
        // A decoder that stops producing (here: frozen with SIGSTOP, as a hung mount would freeze it). What it wrote
        // before is read first (the pipe holds about 1 s; the file is 5 s, so ffmpeg cannot have finished); then a
        // read waits ReadTimeout and kills it. (Timing the first output instead, with a 1 ms timeout, failed on a
        // loaded machine where ffmpeg had written before the first read.)
        var options = new AudioDecoderOptions { ReadTimeout = TimeSpan.FromMilliseconds(300) };
        using var source = AudioDecoder.Open(_tones.Flac, options: options);
        int pid = ((FfmpegAudioSource)source).ProcessId;
        using (var stop = System.Diagnostics.Process.Start("kill", ["-STOP", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            stop.WaitForExit();

        var buffer = new float[4096];
        var e = Assert.Throws<TimeoutException>(() => { while (source.Read(buffer) > 0) { } });

        Assert.StartsWith($"{_tones.Flac}: ffmpeg produced no audio for 0.3 s and was killed", e.Message);
        Assert.False(Directory.Exists($"/proc/{pid}"));
    }

    [Fact]
    public void Ffmpeg_decodes_with_one_thread_not_a_frame_thread_per_core()
    {
        // FLAC's decoder is frame-threaded: by default ffmpeg starts as many decoding threads as the machine has cores (6
        // threads in all on 2 cores, more on more), beside the worker's decoder threads that its share of the cores counts.
        using var source = AudioDecoder.Open(_tones.Flac);
        Assert.True(source.Read(new float[16_000]) > 0);
        int pid = ((FfmpegAudioSource)source).ProcessId; // blocked on its full pipe: its decoder is open, its threads started

        var threads = Directory.GetDirectories($"/proc/{pid}/task").Length;

        Assert.InRange(threads, 1, 3);
    }

    [Fact]
    public void Dispose_kills_a_running_ffmpeg()
    {
        var source = AudioDecoder.Open(_tones.Flac);
        Assert.True(source.Read(new float[16_000]) > 0);
        int pid = ((FfmpegAudioSource)source).ProcessId;
        Assert.True(Directory.Exists($"/proc/{pid}"), "ffmpeg should still be running (blocked on its full pipe)");

        source.Dispose();

        Assert.False(Directory.Exists($"/proc/{pid}"));
        Assert.Throws<ObjectDisposedException>(() => source.Read(new float[1]));
    }

    [Fact]
    public void Missing_ffmpeg_is_an_environment_error()
    {
        var options = new AudioDecoderOptions { FfmpegPath = "/opt/nowhere/ffmpeg" };

        var e = Assert.Throws<InvalidOperationException>(() => AudioDecoder.Open(_tones.Mp3, options: options));

        Assert.Equal("ffmpeg not found: install the Debian package ffmpeg (looked for '/opt/nowhere/ffmpeg')", e.Message);
    }

    [Fact]
    public void Options_are_validated_with_every_problem_listed()
    {
        var options = new AudioDecoderOptions { FfmpegPath = " ", ReadTimeout = TimeSpan.Zero };

        var e = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains("FfmpegPath", e.Message);
        Assert.Contains("ReadTimeout", e.Message);
    }

    [Fact]
    public void Reads_do_not_allocate()
    {
        using var source = AudioDecoder.Open(_tones.Flac);
        var buffer = new float[16];
        source.Read(buffer); // warm up

        long before = GC.GetAllocatedBytesForCurrentThread();
        int reads = 0;
        int total = 0;
        int n;
        while (total < ExpectedSamples - 16_000 && (n = source.Read(buffer)) > 0)
        {
            total += n;
            reads++;
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(reads >= 3_000, $"{reads} reads");
        // The runtime may allocate a few KB once while it recompiles hot methods; an
        // allocation per read (24 bytes at the very least) would come to 72 KB or more.
        Assert.True(allocated < 16_384, $"{allocated} bytes allocated over {reads} reads");
    }

    private string Path(string name) => (string)typeof(EncodedTones).GetProperty(name)!.GetValue(_tones)!;

    /// <summary>A copy with 512 random bytes every <paramref name="every"/> bytes after the first 8 KB.</summary>
    private string CorruptCopy(string source, string name, int every)
    {
        byte[] bytes = File.ReadAllBytes(source);
        var random = new Random(42);
        for (int at = 8_192; at + 512 < bytes.Length; at += every)
            random.NextBytes(bytes.AsSpan(at, 512));
        string path = _dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static double MaxError(float[] actual, int from, int to, Func<int, double> expected)
    {
        double worst = 0;
        for (int i = from; i < to; i++)
            worst = Math.Max(worst, Math.Abs(actual[i] - expected(i)));
        return worst;
    }
}
