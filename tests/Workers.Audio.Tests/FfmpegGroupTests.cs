using System.Diagnostics;
using System.Text.RegularExpressions;
using Workers.Audio.Tests.TestFiles;
using Workers.Testing;

namespace Workers.Audio.Tests;

/// <summary>Several files decoded by one real ffmpeg (<see cref="AudioDecoder.OpenGroup"/>).</summary>
public sealed class FfmpegGroupTests : IClassFixture<EncodedTones>, IDisposable
{
    private readonly EncodedTones _tones;
    private readonly TempDirectory _dir = new();
    private readonly string _out;

    public FfmpegGroupTests(EncodedTones tones)
    {
        _tones = tones;
        _out = _dir.File("out:put"); // a colon in the temp root: outputs are file: URLs, never read as a protocol
        Directory.CreateDirectory(_out);
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void One_ffmpeg_decodes_every_range_to_the_samples_it_gives_alone()
    {
        string wav16k = new WavBuilder { SampleRate = 16000 }.Write(_dir.File("tone16k.wav"), Signals.Sine(16000 * 5, 16000, EncodedTones.Hz, EncodedTones.Amplitude));
        AudioRange[] ranges =
        [
            new(_tones.Flac, 0, null),
            new(_tones.Mp3, 1.5, 3.2),          // an input seek and an output cut
            new(_tones.Ogg, 2.0000625, 4.71),   // on an odd sample
            new(wav16k, 0.7, 4),                // read directly, not by ffmpeg
            new(_tones.StereoFlac, 0, 6),       // past the end
            new(_tones.Wav44k, 1, 1),           // empty
            new(_tones.MulawWav16k, 0.5, null),
            new(_tones.Mp3, 0, 2.5),            // from its start, cut
        ];
        var (options, log) = CountingFfmpeg();

        var sources = AudioDecoder.OpenGroup(ranges, options, _out, CancellationToken.None);
        Assert.Equal(1, Scripts.Starts(log)); // without groups: 6
        // The FLACs and the MP3 decoded from their start are sources of the filter graph (their headers say one audio
        // stream); the seeked MP3, the Vorbis file and the mu-law WAV are -i inputs.
        var arguments = File.ReadAllText(log);
        Assert.Equal(3, Regex.Count(arguments, "amovie="));
        Assert.Equal(3, Regex.Count(arguments, " -i "));
        // Every file decodes on one thread, as the worker's core budget counts it (FLAC's decoder would take a thread per core).
        Assert.Equal(3, Regex.Count(arguments, "amovie=filename=[^,]*:dec_threads=1,"));
        Assert.Equal(3, Regex.Count(arguments, " -threads 1 -i "));

        for (var i = 0; i < ranges.Length; i++)
        {
            using var source = Assert.IsAssignableFrom<IAudioSource>(sources[i]);
            float[] grouped = Signals.ReadAll(source, bufferSize: 1000);
            float[] alone = Signals.Decode(ranges[i].Path, ranges[i].StartSeconds, ranges[i].EndSeconds);
            Assert.True(alone.AsSpan().SequenceEqual(grouped), $"{ranges[i]}: {grouped.Length} samples grouped, {alone.Length} alone, or different samples");
            if (i != 5) Assert.NotEmpty(grouped);
        }
        Assert.Empty(Directory.GetFiles(_out)); // each output is deleted with its source
    }

    [Fact]
    public void Sources_of_the_filter_graph_downmix_and_pick_streams_as_the_single_file_path_does()
    {
        // 5.1 with a different tone per channel (downmixed with rematrix_maxval 1), stereo Opus, and a Matroska file with
        // two audio streams, of which -map 0:a:0 must take the first.
        string surround = _dir.File("surround.flac");
        Ffmpeg.Run(["-f", "lavfi", "-i", "aevalsrc=0.4*sin(300*2*PI*t)|0.3*sin(500*2*PI*t)|0.5*sin(700*2*PI*t)|0.2*sin(900*2*PI*t)|0.6*sin(1100*2*PI*t)|0.1*sin(1300*2*PI*t):s=48000:d=4:c=5.1", surround]);
        string opus = _dir.File("stereo.opus");
        Ffmpeg.Run(["-i", _tones.StereoWav44k, "-c:a", "libopus", "-b:a", "64k", opus]);
        string twoStreams = _dir.File("two.mka");
        Ffmpeg.Run(["-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-f", "lavfi", "-i", "sine=frequency=880:duration=3", "-map", "0", "-map", "1", "-c:a", "flac", twoStreams]);
        // WAVs ffmpeg decodes: stereo and four channels without a channel mask (layouts ffmpeg leaves unknown), 24-bit
        // 5.1 with one, and mu-law.
        string quad = new WavBuilder { SampleRate = 22050, Channels = 4 }.Write(_dir.File("quad.wav"),
            Enumerable.Range(0, 22050 * 3 * 4).Select(i => 0.2 * (1 + i % 4) * Math.Sin(2 * Math.PI * (200 + 150 * (i % 4)) * (i / 4) / 22050.0)).ToArray());
        string surroundWav = _dir.File("surround.wav");
        Ffmpeg.Run(["-i", surround, "-c:a", "pcm_s24le", surroundWav]);
        AudioRange[] ranges =
        [
            new(surround, 0, 5), new(opus, 0, 2.5), new(twoStreams, 0, 4), new(_tones.Flac, 0, 2.25),
            new(_tones.StereoWav44k, 0, 4.5), new(quad, 0, null), new(surroundWav, 0, 1.75), new(_tones.MulawWav16k, 0, null),
        ];
        var (options, log) = CountingFfmpeg();

        var sources = AudioDecoder.OpenGroup(ranges, options, _out, CancellationToken.None);

        var arguments = File.ReadAllText(log);
        Assert.Equal(7, Regex.Count(arguments, "amovie=")); // the Matroska file's header says nothing of its streams: an input
        Assert.Equal(1, Regex.Count(arguments, " -i "));
        var lengths = new int[ranges.Length];
        for (var i = 0; i < ranges.Length; i++)
        {
            using var source = Assert.IsAssignableFrom<IAudioSource>(sources[i]);
            float[] grouped = Signals.ReadAll(source, bufferSize: 777);
            float[] alone = Signals.Decode(ranges[i].Path, ranges[i].StartSeconds, ranges[i].EndSeconds);
            Assert.NotEmpty(grouped);
            Assert.True(alone.AsSpan().SequenceEqual(grouped), $"{ranges[i]}: {grouped.Length} samples grouped, {alone.Length} alone, or different samples");
            lengths[i] = grouped.Length;
        }
        Assert.Equal([64_000, 40_000, 48_000, 36_000, 72_000, 48_000, 28_000, 80_000], lengths); // to the file's end, or cut at the range's
        Assert.Empty(Directory.GetFiles(_out));
    }

    [Theory]
    [InlineData("garbage")]    // ffmpeg cannot open it: exit 1 before anything is decoded
    [InlineData("corrupt")]    // decode errors on stderr, exit 0: ffmpeg's messages name no input
    public void A_group_with_a_bad_file_gives_its_files_back_to_be_decoded_alone(string bad)
    {
        string path = _dir.File($"{bad}.flac");
        byte[] bytes = File.ReadAllBytes(_tones.Flac);
        if (bad == "garbage") bytes = Enumerable.Range(0, 5000).Select(i => (byte)(i * 97 + i / 13)).ToArray();
        else for (int at = 8_192; at + 512 < bytes.Length; at += 20_000) new Random(42).NextBytes(bytes.AsSpan(at, 512));
        File.WriteAllBytes(path, bytes);

        var sources = AudioDecoder.OpenGroup([new(_tones.Mp3, 0, null), new(path, 0, null), new(_tones.Ogg, 0, null)], AudioDecoderOptions.Default, _out, CancellationToken.None);

        Assert.All(sources, Assert.Null);
        Assert.Empty(Directory.GetFiles(_out));
        // Alone, the bad one fails with its own error and the others decode.
        Assert.ThrowsAny<AudioFormatException>(() => Signals.Decode(path));
        Assert.NotEmpty(Signals.Decode(_tones.Mp3));
    }

    [Fact]
    public void A_file_that_cannot_be_opened_is_left_to_open_alone_and_the_rest_are_grouped()
    {
        string missing = _dir.File("missing.flac");
        var (options, log) = CountingFfmpeg();

        var sources = AudioDecoder.OpenGroup([new(_tones.Flac, 0, null), new(missing, 0, null), new(_tones.Mp3, 0, null)], options, _out, CancellationToken.None);

        Assert.Null(sources[1]);
        Assert.Throws<FileNotFoundException>(() => AudioDecoder.Open(missing)); // what opening it alone says
        Assert.Equal(1, Scripts.Starts(log));
        foreach (var s in new[] { sources[0], sources[2] })
        {
            using var source = Assert.IsAssignableFrom<IAudioSource>(s);
            Assert.Equal(80_000, Signals.ReadAll(source).Length, 48.0); // MP3 within 3 ms
        }
    }

    [Fact]
    public async Task A_file_whose_header_read_hangs_is_left_to_open_alone_and_the_rest_are_grouped()
    {
        // Whether a FLAC is a filter-graph source is read from its header where the group opens it; on a hung mount
        // that read times out, and the file takes the path of any file that cannot be opened.
        using var mount = HungMount.Start();
        var (counting, log) = CountingFfmpeg();
        var options = new AudioDecoderOptions { FfmpegPath = counting.FfmpegPath, ReadTimeout = TimeSpan.FromSeconds(1) };
        var watch = Stopwatch.StartNew();

        var sources = await Task.Run(() => AudioDecoder.OpenGroup([new(_tones.Flac, 0, null), new(mount.HeaderHangs, 0, null), new(_tones.Mp3, 0, null)],
            options, _out, CancellationToken.None)).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Null(sources[1]);
        Assert.Equal(1, Scripts.Starts(log));
        Assert.Equal(2, Regex.Count(File.ReadAllText(log), "amovie="));
        foreach (var s in new[] { sources[0], sources[2] })
        {
            using var source = Assert.IsAssignableFrom<IAudioSource>(s);
            Assert.Equal(80_000, Signals.ReadAll(source).Length, 48.0); // MP3 within 3 ms
        }
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}"); // one read timeout, not a stalled group
    }

    [Fact]
    public void A_hung_ffmpeg_is_killed_after_the_read_timeout_and_its_files_given_back() =>
        // An ffmpeg that never writes (a hung mount freezes it the same way).
        AssertKilledAndGivenBack("exec sleep 60\n", TimeSpan.FromMilliseconds(300), [new(_tones.Flac, 0, null), new(_tones.Mp3, 0, null)]);

    [Fact]
    public void An_ffmpeg_that_writes_more_than_the_ranges_hold_is_killed_and_its_files_given_back() =>
        // Output that never stops (timestamps that restart defeat -t): without a cap it grows until the disk is full.
        // The read timeout is longer than the test allows: only the cap can stop it in time.
        AssertKilledAndGivenBack("for a in \"$@\"; do out=\"${a#file:}\"; done\nexec cat /dev/zero > \"$out\"\n", TimeSpan.FromSeconds(60),
            [new(_tones.Flac, 0, 1.0), new(_tones.Mp3, 0, 2.0)]);

    /// <summary>Runs a group through a fake ffmpeg (<paramref name="body"/>, after it writes its pid): it must be killed within 20 s,
    /// every file given back (null) and no output left.</summary>
    private void AssertKilledAndGivenBack(string body, TimeSpan readTimeout, AudioRange[] ranges)
    {
        string pidFile = _dir.File("pid");
        var options = new AudioDecoderOptions { FfmpegPath = Script("fake", $"echo $$ > {pidFile}\n" + body), ReadTimeout = readTimeout };

        var watch = Stopwatch.StartNew();
        var sources = AudioDecoder.OpenGroup(ranges, options, _out, CancellationToken.None);

        Assert.All(sources, Assert.Null);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"took {watch.Elapsed}");
        Assert.False(Directory.Exists($"/proc/{File.ReadAllText(pidFile).Trim()}"));
        Assert.Empty(Directory.GetFiles(_out));
    }

    [Fact]
    public void Cancelling_kills_the_groups_ffmpeg()
    {
        string pidFile = _dir.File("pid");
        string script = Script("slow", $"echo $$ > {pidFile}\nexec sleep 60\n");
        using var cts = new CancellationTokenSource();
        // Cancelled once ffmpeg runs (its pid written), as a worker told to stop would be.
        var cancel = Task.Run(async () =>
        {
            while (!File.Exists(pidFile) || File.ReadAllText(pidFile).Trim().Length == 0) await Task.Delay(20);
            await cts.CancelAsync();
        });

        Assert.ThrowsAny<OperationCanceledException>(() =>
            AudioDecoder.OpenGroup([new(_tones.Flac, 0, null), new(_tones.Mp3, 0, null)], new AudioDecoderOptions { FfmpegPath = script }, _out, cts.Token));
        cancel.GetAwaiter().GetResult();

        Assert.False(Directory.Exists($"/proc/{File.ReadAllText(pidFile).Trim()}"));
        Assert.Empty(Directory.GetFiles(_out));
    }

    // The real ffmpeg behind a script that counts its starts.
    private (AudioDecoderOptions Options, string Log) CountingFfmpeg() =>
        (new AudioDecoderOptions { FfmpegPath = Scripts.CountingFfmpeg(_dir.Path, out var log) }, log);

    private string Script(string name, string body) => Scripts.Write(_dir.File(name), body);
}
