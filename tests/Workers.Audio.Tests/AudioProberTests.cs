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
    public async Task Encoded_files_are_measured_by_ffprobe()
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
        var onPath = new AudioProber("ffprobe-that-is-not-installed");
        var byPath = new AudioProber("/opt/nowhere/ffprobe");

        Assert.Equal("ffprobe-that-is-not-installed not found: install the Debian package ffmpeg",
            (await onPath.ProbeAsync(_tones.Flac)).Error);
        Assert.Equal("ffprobe not found: install the Debian package ffmpeg (looked for '/opt/nowhere/ffprobe')",
            (await byPath.ProbeAsync(_tones.Flac)).Error);
    }

    [Fact]
    public async Task Ffprobe_that_overruns_its_timeout_is_killed()
    {
        // Starting ffprobe alone takes far longer than a millisecond.
        var prober = new AudioProber(timeout: TimeSpan.FromMilliseconds(1));

        var result = await prober.ProbeAsync(_tones.Flac);

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
}
