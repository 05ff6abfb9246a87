using Workers.Audio.Tests.TestFiles;

namespace Workers.Audio.Tests;

public sealed class AudioProberTests : IClassFixture<EncodedTones>, IDisposable
{
    // ffprobe estimates an MP3's duration from its frames, counting the encoder's delay and
    // padding (about 50 ms at 44.1 kHz); the decoder trims them. Planning shards tolerates it.
    private const double Mp3ProbeTolerance = 0.06;

    private readonly EncodedTones _tones;
    private readonly TempDirectory _dir = new();
    private readonly AudioProber _prober = new();

    public AudioProberTests(EncodedTones tones)
    {
        _tones = tones;
    }

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(SampleFormat.U8, 1, 16000)]
    [InlineData(SampleFormat.S16, 2, 44100)]
    [InlineData(SampleFormat.S24, 6, 48000)]
    [InlineData(SampleFormat.S32, 1, 8000)]
    [InlineData(SampleFormat.F32, 2, 16000)]
    [InlineData(SampleFormat.F64, 1, 22050)]
    public async Task Wav_duration_comes_from_the_header_without_ffprobe(SampleFormat format, int channels, int rate)
    {
        string path = new WavBuilder { Format = format, Channels = channels, SampleRate = rate }
            .Write(_dir.File("a.wav"), Signals.Distinct(rate * 2 + 5, channels));
        // No ffprobe at all: only the header can have answered.
        var prober = new AudioProber("/nonexistent/ffprobe");

        var result = await prober.ProbeAsync(path);

        Assert.Null(result.Error);
        Assert.Equal((rate * 2 + 5) / (double)rate, result.DurationSeconds);
    }

    [Fact]
    public async Task Wav_is_recognised_by_content_not_name()
    {
        string path = new WavBuilder().Write(_dir.File("recording.dat"), Signals.Distinct(8000));

        var result = await new AudioProber("/nonexistent/ffprobe").ProbeAsync(path);

        Assert.Equal(0.5, result.DurationSeconds);
    }

    [Fact]
    public async Task Streamed_and_truncated_wavs_report_the_audio_present()
    {
        string streamed = new WavBuilder { DataSizeField = 0xFFFFFFFF }.Write(_dir.File("s.wav"), Signals.Distinct(24000));
        string truncated = new WavBuilder { KeepDataBytes = 16000 * 2 + 1 }.Write(_dir.File("t.wav"), Signals.Distinct(48000));

        Assert.Equal(1.5, (await _prober.ProbeAsync(streamed)).DurationSeconds);
        Assert.Equal(1.0, (await _prober.ProbeAsync(truncated)).DurationSeconds);
    }

    [Fact]
    public async Task Encoded_files_are_measured_by_their_header_or_ffprobe()
    {
        var flac = await _prober.ProbeAsync(_tones.Flac);
        var ogg = await _prober.ProbeAsync(_tones.Ogg);
        var mp3 = await _prober.ProbeAsync(_tones.Mp3);

        Assert.Equal(EncodedTones.Seconds, flac.DurationSeconds!.Value, 0.001);
        Assert.Equal(EncodedTones.Seconds, ogg.DurationSeconds!.Value, 0.005);
        Assert.Equal(EncodedTones.Seconds, mp3.DurationSeconds!.Value, Mp3ProbeTolerance);
    }

    [Fact]
    public async Task Wav_in_an_encoding_without_frame_count_goes_to_ffprobe()
    {
        var measured = await _prober.ProbeAsync(_tones.MulawWav16k);
        var withoutFfprobe = await new AudioProber("/nonexistent/ffprobe").ProbeAsync(_tones.MulawWav16k);

        Assert.Equal(EncodedTones.Seconds, measured.DurationSeconds!.Value, 0.001);
        Assert.StartsWith("ffprobe not found", withoutFfprobe.Error);
    }

    [Fact]
    public async Task Mp3_named_wav_is_still_measured()
    {
        string path = _dir.File("mislabelled.wav");
        File.Copy(_tones.Mp3, path);

        var result = await _prober.ProbeAsync(path);

        Assert.Equal(EncodedTones.Seconds, result.DurationSeconds!.Value, Mp3ProbeTolerance);
    }

    [Fact]
    public async Task Text_file_named_wav()
    {
        string path = _dir.File("notes.wav");
        File.WriteAllText(path, "speaker 1 said hello\n");

        var result = await _prober.ProbeAsync(path);

        Assert.Null(result.DurationSeconds);
        Assert.StartsWith("not a WAV file: RIFF header missing (ffprobe: ", result.Error);
    }

    [Fact]
    public async Task Garbage_mp3_carries_ffprobes_message()
    {
        string path = _dir.File("noise.mp3");
        File.WriteAllBytes(path, Enumerable.Range(0, 3000).Select(i => (byte)(i * 131 + i / 7)).ToArray());

        var result = await _prober.ProbeAsync(path);

        Assert.Null(result.DurationSeconds);
        Assert.StartsWith("ffprobe: ", result.Error);
        Assert.DoesNotContain("file:", result.Error); // its echo of the input is dropped
    }

    [Fact]
    public async Task Wav_with_no_samples()
    {
        string headerOnly = new WavBuilder().Write(_dir.File("h.wav"), []);
        string streamedEmpty = new WavBuilder { DataSizeField = 0 }.Write(_dir.File("s.wav"), []);

        Assert.Equal(AudioProbeResult.Failure(headerOnly, "no audio samples"), await _prober.ProbeAsync(headerOnly));
        Assert.Equal(AudioProbeResult.Failure(streamedEmpty, "no audio samples"), await _prober.ProbeAsync(streamedEmpty));
    }

    [Fact]
    public async Task Truncated_wav_header()
    {
        string path = _dir.File("cut.wav");
        File.WriteAllBytes(path, new WavBuilder().Build(Signals.Distinct(100))[..30]);

        var result = await _prober.ProbeAsync(path);

        Assert.Equal("truncated WAV header", result.Error);
    }

    [Fact]
    public async Task Empty_and_missing_files()
    {
        string empty = _dir.File("empty.flac");
        File.WriteAllBytes(empty, []);

        Assert.Equal("empty file (0 bytes)", (await _prober.ProbeAsync(empty)).Error);
        Assert.Equal("file not found", (await _prober.ProbeAsync(_dir.File("gone.mp3"))).Error);
        Assert.Equal("not a file: it is a directory", (await _prober.ProbeAsync(_dir.Path)).Error);
    }

    [Fact]
    public async Task Missing_ffprobe_fails_each_file_clearly()
    {
        // Vorbis: its header does not state the duration (FLAC's does, HeaderDuration).
        var onPath = new AudioProber("ffprobe-that-is-not-installed");
        var byPath = new AudioProber("/opt/nowhere/ffprobe");

        Assert.Equal("ffprobe-that-is-not-installed not found: install the Debian package ffmpeg",
            (await onPath.ProbeAsync(_tones.Ogg)).Error);
        Assert.Equal("ffprobe not found: install the Debian package ffmpeg (looked for '/opt/nowhere/ffprobe')",
            (await byPath.ProbeAsync(_tones.Ogg)).Error);
    }

    [Fact]
    public async Task Ffprobe_that_overruns_its_timeout_is_killed()
    {
        // Starting ffprobe alone takes far longer than a millisecond (Vorbis: its header does not state the duration).
        var prober = new AudioProber(timeout: TimeSpan.FromMilliseconds(1));

        var result = await prober.ProbeAsync(_tones.Ogg);

        Assert.Equal("ffprobe timed out after 0.001 s", result.Error);
    }

    [Fact]
    public async Task Cancellation_is_not_turned_into_a_result()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _prober.ProbeAsync(_tones.Flac, cts.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _prober.ProbeManyAsync([_tones.Flac], ct: cts.Token));
    }

    [Fact]
    public async Task ProbeMany_keeps_input_order_with_good_and_bad_files()
    {
        string wav = new WavBuilder().Write(_dir.File("one-second.wav"), Signals.Distinct(16000));
        string text = _dir.File("text.wav");
        File.WriteAllText(text, "not audio");
        string headerOnly = new WavBuilder().Write(_dir.File("header-only.wav"), []);
        string missing = _dir.File("missing.flac");
        string[] paths = [_tones.Flac, text, wav, missing, _tones.Ogg, headerOnly, _tones.Mp3, wav, text, _tones.Wav8k, missing, _tones.Flac];

        var results = await _prober.ProbeManyAsync(paths, maxParallelism: 4);

        Assert.Equal(paths, results.Select(r => r.Path));
        Assert.Equal(
            [5.0, null, 1.0, null, 5.0, null, 5.0, 1.0, null, 5.0, null, 5.0],
            results.Select(r => r.DurationSeconds is double d ? Math.Round(d, 1) : (double?)null));
        Assert.All(results, r => Assert.True((r.DurationSeconds is null) != (r.Error is null)));
        Assert.Equal("file not found", results[3].Error);
        Assert.Equal("no audio samples", results[5].Error);
    }

    [Fact]
    public async Task ProbeMany_with_default_parallelism_and_no_paths()
    {
        Assert.Empty(await _prober.ProbeManyAsync([]));
        Assert.Equal(5.0, (await _prober.ProbeManyAsync([_tones.Wav44k]))[0].DurationSeconds);
    }

    [Fact]
    public async Task A_sparse_wav_claiming_8_channels_at_1_Hz_is_implausible_not_74565_hours()
    {
        // Issue 13, the example: a 4 KB sparse WAV whose header claims 8 channels at 1 Hz planned
        // 74,565 h. Before the fix the probe answered 268,434,000 s.
        string path = new WavBuilder { SampleRate = 1, Channels = 8, DataSizeField = 0xFFFF_FFF0 }.Write(_dir.File("sparse.wav"), Signals.Distinct(16, 8));
        using (var file = new FileStream(path, FileMode.Open)) file.SetLength(0xFFFF_FFF0L + 44); // sparse: no blocks written

        var result = await new AudioProber("/nonexistent/ffprobe").ProbeAsync(path);

        Assert.Null(result.DurationSeconds);
        Assert.Contains("implausible audio: sample rate 1 Hz is outside 4000-384000 Hz (Corpus:Limits:MinSampleRate / MaxSampleRate)", result.Error);
    }

    [Fact]
    public async Task Too_many_channels_and_a_duration_the_bytes_cannot_hold_are_implausible()
    {
        // Siblings: a WAV header with 200 channels, and a FLAC whose STREAMINFO claims an hour in 18 KB
        // (ffprobe believes it). Before the fix both were planned as given.
        string channels = new WavBuilder { Channels = 200 }.Write(_dir.File("wide.wav"), Signals.Distinct(160, 200));
        string flac = _dir.File("forged.flac");
        Ffmpeg.Run("-f", "lavfi", "-i", "anoisesrc=r=16000:d=0.2", "-ac", "1", "-c:a", "flac", flac);
        byte[] bytes = File.ReadAllBytes(flac);
        // STREAMINFO's 64 bits at offset 18: rate (20), channels - 1 (3), bits - 1 (5), total samples (36).
        ulong info = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(18));
        info = (info & ~((1UL << 36) - 1)) | (16000UL * 3600);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(18), info);
        File.WriteAllBytes(flac, bytes);

        Assert.Contains("200 channels, more than Corpus:Limits:MaxChannels (64)", (await _prober.ProbeAsync(channels)).Error);
        var forged = await _prober.ProbeAsync(flac);
        Assert.Null(forged.DurationSeconds);
        Assert.Contains($"implausible duration: 3600 s in a file of {bytes.Length} bytes would be under Corpus:Limits:MinBytesPerSecond (16", forged.Error);
        // Configurable: a corpus of 1 Hz sensor recordings can say so.
        var lenient = new AudioProber(limits: new Workers.Core.Options.CorpusLimits { MaxChannels = 256, MinBytesPerSecond = 1 });
        Assert.Null((await lenient.ProbeAsync(channels)).Error);
        Assert.Equal(3600, (await lenient.ProbeAsync(flac)).DurationSeconds);
    }

    [Fact]
    public async Task A_fifo_in_the_folder_fails_the_probe_instead_of_hanging_the_enqueue()
    {
        // The enqueue-time sibling of the worker's blocking open: before the fix the probe's open blocked.
        string fifo = _dir.File("pipe.wav");
        using (var p = System.Diagnostics.Process.Start("mkfifo", [fifo])) p.WaitForExit();

        var result = await _prober.ProbeAsync(fifo).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Contains("not a regular file: it is a FIFO (named pipe)", result.Error);
    }
}
