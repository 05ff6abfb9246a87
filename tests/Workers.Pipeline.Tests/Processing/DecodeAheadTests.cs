using Workers.Audio;
using Workers.Audio.Synthesis;
using Workers.Pipeline.Processing;
using Workers.Pipeline.Tests.Vad;
using Workers.Pipeline.Vad;
using Workers.Testing;

namespace Workers.Pipeline.Tests.Processing;

/// <summary>
/// Issue 10: each item is decoded once, ahead of inference and overlapping it, into memory or the
/// shard's temp folder (within their budgets), and every sub-stream reads that one decode.
/// </summary>
[Collection(SileroCollection.Name)]
public sealed class DecodeAheadTests(SileroFixture f)
{
    private static readonly VadOptions Options = new() { SubStreamSeconds = 30, WarmUpSeconds = 5 };

    private string NewDir(string name)
    {
        var dir = Path.Combine(f.WorkDir, name + "-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary><paramref name="count"/> generated speech WAV files of <paramref name="seconds"/> each, as whole-file items.</summary>
    private List<ProcessItem> WavItems(string name, int count, int seconds, int seed)
    {
        var dir = NewDir(name);
        var items = new List<ProcessItem>();
        for (var i = 0; i < count; i++)
        {
            var p = Path.Combine(dir, $"f{i}.wav");
            f.Speech.WriteWav(p, seconds, new Random(seed + i));
            items.Add(new ProcessItem(i, p, 0, seconds));
        }
        return items;
    }

    /// <summary>Generated speech of <paramref name="seconds"/> as long.wav and long.flac in <paramref name="dir"/> (at <paramref name="rate"/>; null: 16 kHz).</summary>
    private (string Wav, string Flac) SpeechFlac(string dir, int seconds, int seed, int? rate = null)
    {
        var wav = Path.Combine(dir, "long.wav");
        f.Speech.WriteWav(wav, seconds, new Random(seed));
        var flac = Path.Combine(dir, "long.flac");
        SpeechCorpusGenerator.Encode(wav, flac, rate);
        return (wav, flac);
    }

    [Fact]
    public void A_long_compressed_item_starts_one_ffmpeg_and_gives_the_segments_of_its_lossless_original()
    {
        var dir = NewDir("once");
        var (wav, flac) = SpeechFlac(dir, 150, 31); // 16 kHz FLAC: lossless, the very samples of the WAV
        var ffmpeg = Scripts.CountingFfmpeg(dir, out var log);
        var temp = NewDir("temp");

        using var model = new SileroVadModel(f.Session, 8);
        using var fromWav = new VadBatcher(model, Options);
        var expected = new ShardProcessor(fromWav, Options).Process([new ProcessItem(0, wav, 0, 150)], null, CancellationToken.None);
        using var fromFlac = new VadBatcher(model, Options);
        var actual = new ShardProcessor(fromFlac, Options, new AudioDecoderOptions { FfmpegPath = ffmpeg })
            .Process([new ProcessItem(0, flac, 0, 150)], null, CancellationToken.None, temp);

        Assert.Equal(5, fromFlac.Planner.Plan(150 * 16000).Length); // five sub-streams ...
        Assert.Equal(1, Scripts.Starts(log));                        // ... one decode
        Assert.Empty(actual.Failures);
        Assert.NotEmpty(expected.Segments);
        Assert.Equal(expected.Segments, actual.Segments);
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp)); // the decoded audio went with its item
    }

    [Fact]
    public void Decoding_runs_ahead_of_inference_in_the_temp_folder_and_nothing_is_left_there()
    {
        var items = WavItems("ahead", 6, 8, 40);
        var temp = NewDir("temp");
        var model = new WatchingModel(new FakeVadModel(2, memoryWindows: 3), temp);
        using var batcher = new VadBatcher(model, new VadOptions());
        var output = new ShardProcessor(batcher, new VadOptions(), null, new DecodeAheadOptions { DecoderThreads = 1, MaxDecodedMb = 1, MaxInMemoryMb = 0 }) // room for two items, in files
            .Process(items, null, CancellationToken.None, temp);

        Assert.Empty(output.Failures);
        Assert.Equal(48, output.AudioSeconds, 6);
        // Inference began before every item was decoded, and items were decoded while it ran.
        Assert.True(model.SeenAtFirstRun.Count < items.Count, $"all {items.Count} items were decoded before inference started");
        Assert.True(model.SeenWhileRunning.Except(model.SeenAtFirstRun).Any(), "no item was decoded while inference ran");
        Assert.All(model.SeenWhileRunning, name => Assert.Matches(@"^decoded-\d+-\d+\.f32$", name));
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp));
    }

    [Fact]
    public void Decoded_audio_held_stays_within_the_budget_and_the_segments_do_not_change()
    {
        var items = WavItems("budget", 5, 12, 60); // 12 s = 768,000 bytes decoded
        ShardOutput Run(long maxMb, int threads, out long peak)
        {
            using var batcher = new VadBatcher(new FakeVadModel(16, memoryWindows: 3), new VadOptions());
            var processor = new ShardProcessor(batcher, new VadOptions(), null, new DecodeAheadOptions { DecoderThreads = threads, MaxDecodedMb = maxMb });
            var output = processor.Process(items, null, CancellationToken.None);
            peak = processor.PeakDecodedBytes;
            return output;
        }

        var free = Run(2048, 3, out var freePeak);
        var tight = Run(1, 3, out var tightPeak); // 1 MB: room for one item at a time

        Assert.Equal(free.Segments, tight.Segments);
        Assert.Equal(12 * 16000 * 4, tightPeak);
        Assert.True(freePeak > tightPeak, $"with room, {freePeak} bytes were held at most");
    }

    [Fact]
    public void A_cancelled_shard_stops_its_decoders_and_removes_what_they_decoded()
    {
        var items = WavItems("cancel", 4, 10, 80);
        var temp = NewDir("temp");
        using var cts = new CancellationTokenSource();
        var model = new WatchingModel(new FakeVadModel(4, memoryWindows: 3), temp) { OnRun = cts.Cancel };
        using var batcher = new VadBatcher(model, new VadOptions());
        Assert.ThrowsAny<OperationCanceledException>(() =>
            new ShardProcessor(batcher, new VadOptions(), null, new DecodeAheadOptions { DecoderThreads = 2, MaxInMemoryMb = 0 }).Process(items, null, cts.Token, temp));
        Assert.NotEmpty(model.SeenAtFirstRun);
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp));
    }

    [Fact]
    public void Items_that_fit_the_memory_budget_are_held_in_memory_and_the_rest_in_files_with_the_same_segments()
    {
        var items = WavItems("memory", 5, 12, 120); // 12 s = 768,000 bytes decoded
        (ShardOutput Output, HashSet<string> Files, long PeakMemory) Run(long inMemoryMb)
        {
            var temp = NewDir("temp");
            var model = new WatchingModel(new SileroVadModel(f.Session, 4), temp);
            using var batcher = new VadBatcher(model, Options);
            var processor = new ShardProcessor(batcher, Options, null, new DecodeAheadOptions { DecoderThreads = 2, MaxInMemoryMb = inMemoryMb });
            var output = processor.Process(items, null, CancellationToken.None, temp);
            Assert.Empty(output.Failures);
            Assert.Empty(Directory.EnumerateFileSystemEntries(temp));
            return (output, model.SeenWhileRunning, processor.PeakInMemoryBytes);
        }

        var files = Run(0);
        var memory = Run(128);
        var tight = Run(1); // 1 MB: one item at a time in memory, the others in files

        Assert.NotEmpty(files.Output.Segments);
        Assert.Equal(files.Output.Segments, memory.Output.Segments);
        Assert.Equal(files.Output.Segments, tight.Output.Segments);
        Assert.Equal(0, files.PeakMemory);
        Assert.NotEmpty(files.Files);
        Assert.Empty(memory.Files); // no item touched the temp folder
        Assert.True(memory.PeakMemory > 768_000, $"{memory.PeakMemory} bytes were in memory at most");
        Assert.Equal(768_000, tight.PeakMemory);
        Assert.NotEmpty(tight.Files);
    }

    /// <summary><paramref name="count"/> 10-second speech files as MP3 (44.1 kHz stereo, as crawled clips come), whole-file items.</summary>
    private List<ProcessItem> Mp3Items(string dir, int count, int seed)
    {
        var items = new List<ProcessItem>();
        for (var i = 0; i < count; i++)
        {
            var wav = Path.Combine(dir, $"c{i}.wav");
            f.Speech.WriteWav(wav, 10, new Random(seed + i));
            var mp3 = Path.Combine(dir, $"c{i}.mp3");
            SpeechCorpusGenerator.Encode(wav, mp3, 44100);
            items.Add(new ProcessItem(i, mp3, 0, 10));
        }
        return items;
    }

    private (ShardOutput Output, int Starts, int Grouped) RunCounting(string dir, List<ProcessItem> items, double groupSeconds)
    {
        var ffmpeg = Scripts.CountingFfmpeg(NewDir("ffmpeg"), out var log);
        var temp = NewDir("temp");
        using var model = new SileroVadModel(f.Session, 8);
        using var batcher = new VadBatcher(model, Options);
        var processor = new ShardProcessor(batcher, Options, new AudioDecoderOptions { FfmpegPath = ffmpeg }, new DecodeAheadOptions { GroupSeconds = groupSeconds });
        var output = processor.Process(items, null, CancellationToken.None, temp);
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp)); // the group's output files went with their items
        return (output, Scripts.Starts(log), processor.GroupedItems);
    }

    [Fact]
    public void Short_compressed_items_are_decoded_by_one_ffmpeg_per_group_with_the_segments_of_one_ffmpeg_each()
    {
        var dir = NewDir("group");
        var items = Mp3Items(dir, 12, 200);

        var alone = RunCounting(dir, items, groupSeconds: 0);
        var grouped = RunCounting(dir, items, groupSeconds: 600);

        Assert.Equal(12, alone.Starts);
        Assert.Equal(1, grouped.Starts); // 12 x 10 s fit one group of 600 s
        Assert.Equal(12, grouped.Grouped);
        Assert.Empty(grouped.Output.Failures);
        Assert.NotEmpty(alone.Output.Segments);
        Assert.Equal(alone.Output.Segments, grouped.Output.Segments);
        Assert.Equal(alone.Output.AudioSeconds, grouped.Output.AudioSeconds);

        var small = RunCounting(dir, items, groupSeconds: 35); // 3 items a group
        Assert.Equal(4, small.Starts);
        Assert.Equal(alone.Output.Segments, small.Output.Segments);
    }

    [Fact]
    public void Items_longer_than_the_group_item_limit_are_grouped_only_from_the_start_of_a_wav_flac_mp3_or_opus_file()
    {
        var dir = NewDir("group-long");
        var (wav, flac) = SpeechFlac(dir, 130, 41, 44100);
        var ogg = Path.Combine(dir, "long.ogg"); // Vorbis: an input of a group, whose thread costs more than a start-up saves
        SpeechCorpusGenerator.Encode(wav, ogg, 44100);
        var wav44k = Path.Combine(dir, "long44k.wav");
        SpeechCorpusGenerator.Encode(wav, wav44k, 44100);

        // From their start, FLACs and 44.1 kHz WAVs over 120 s are filter-graph sources of one group: 390 s fit its 600 s.
        foreach (var file in new[] { flac, wav44k })
        {
            List<ProcessItem> items = [new(0, file, 0, 130), new(1, file, 0, 130), new(2, file, 0, 130)];
            var grouped = RunCounting(dir, items, groupSeconds: 600);
            var alone = RunCounting(dir, items, groupSeconds: 0);
            Assert.Equal(1, grouped.Starts);
            Assert.Equal(3, grouped.Grouped);
            Assert.Equal(3, alone.Starts);
            Assert.Empty(grouped.Output.Failures);
            Assert.NotEmpty(alone.Output.Segments);
            Assert.Equal(alone.Output.Segments, grouped.Output.Segments);
        }

        // Ogg, and FLAC ranges that start past zero (an input seek), are each decoded by an ffmpeg of their own.
        var oggs = RunCounting(dir, [new(0, ogg, 0, 130), new(1, ogg, 0, 130), new(2, ogg, 0, 130)], groupSeconds: 600);
        var late = RunCounting(dir, [new(0, flac, 8, 130), new(1, flac, 8, 130), new(2, flac, 8, 130)], groupSeconds: 600);
        foreach (var run in new[] { oggs, late })
        {
            Assert.Equal(3, run.Starts);
            Assert.Equal(0, run.Grouped);
            Assert.Empty(run.Output.Failures);
        }
    }

    [Fact]
    public void A_group_size_that_is_not_a_number_of_seconds_is_refused()
    {
        Assert.Empty(new DecodeAheadOptions { GroupSeconds = 0 }.Validate());
        Assert.Contains(new DecodeAheadOptions { GroupSeconds = -1 }.Validate(), p => p.StartsWith("GroupSeconds must be", StringComparison.Ordinal));
        Assert.Contains(new DecodeAheadOptions { GroupSeconds = double.NaN }.Validate(), p => p.StartsWith("GroupSeconds must be", StringComparison.Ordinal));
    }

    [Fact]
    public void A_bad_file_in_a_group_fails_alone_with_its_own_error_and_the_others_keep_their_segments()
    {
        var dir = NewDir("group-bad");
        var items = Mp3Items(dir, 6, 300);
        File.WriteAllText(items[2].FullPath, "this is not audio at all\n");

        var alone = RunCounting(dir, items, groupSeconds: 0);
        var grouped = RunCounting(dir, items, groupSeconds: 600);

        Assert.Equal(6, alone.Starts);
        Assert.Equal(7, grouped.Starts); // the group, which ffmpeg refused, then each file alone
        Assert.Equal(0, grouped.Grouped);
        var failure = Assert.Single(grouped.Output.Failures);
        Assert.Equal(2, failure.FileIndex);
        Assert.Equal(Assert.Single(alone.Output.Failures), failure);
        Assert.Equal(alone.Output.Segments, grouped.Output.Segments);
        Assert.Contains(grouped.Output.Segments, s => s.FileIndex == 5);
    }

    /// <summary>Scores with <paramref name="inner"/>, noting which decoded files exist in <paramref name="folder"/> at each call.</summary>
    private sealed class WatchingModel(IVadModel inner, string folder) : IVadModel
    {
        public HashSet<string> SeenAtFirstRun { get; private set; } = [];
        public HashSet<string> SeenWhileRunning { get; } = [];
        public Action? OnRun { get; init; }
        private bool _ran;

        public int BatchCapacity => inner.BatchCapacity;
        public int StateSize => inner.StateSize;
        public void ResetState(Span<float> streamState) => inner.ResetState(streamState);

        public void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize)
        {
            var names = Directory.EnumerateFiles(folder).Select(Path.GetFileName).ToHashSet()!;
            if (!_ran) SeenAtFirstRun = names!;
            _ran = true;
            SeenWhileRunning.UnionWith(names!);
            OnRun?.Invoke();
            inner.Run(windows, states, probabilities, batchSize);
        }
    }
}
