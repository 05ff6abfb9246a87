using Workers.Audio.Synthesis;
using Workers.Pipeline.Processing;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Processing;

/// <summary>Segmentation with the real Silero model on synthesized speech whose placement is known (issue 3).</summary>
[Collection(SileroCollection.Name)]
public sealed class ShardProcessorTests(SileroFixture f)
{
    private static readonly VadOptions Options = new();

    private ShardOutput Run(IReadOnlyList<ProcessItem> items, int batch, VadOptions? options = null)
    {
        using var model = new SileroVadModel(f.Session, batch);
        using var batcher = new VadBatcher(model, options ?? Options);
        return new ShardProcessor(batcher, options ?? Options).Process(items, null, CancellationToken.None);
    }

    private static double Overlap(double a0, double a1, double b0, double b1) => Math.Max(0, Math.Min(a1, b1) - Math.Max(a0, b0));

    private static void AssertCoversSpeechNotSilence(IReadOnlyList<SpokenInterval> truth, IEnumerable<FoundSegment> found, double fileSeconds, string what)
    {
        var segs = found.ToList();
        Assert.NotEmpty(segs);
        var spoken = truth.Sum(t => t.End - t.Start);
        var covered = truth.Sum(t => segs.Sum(s => Overlap(t.Start, t.End, s.StartSeconds, s.EndSeconds)));
        Assert.True(covered / spoken > 0.9, $"{what}: only {covered / spoken:P0} of the spoken time is inside segments");

        // Silence: everything at least 0.25 s away from any utterance (padding and the model's reaction time aside).
        var silentCovered = 0.0;
        var silent = 0.0;
        var edges = truth.SelectMany(t => new[] { t.Start, t.End }).ToList();
        var bounds = new List<(double, double)>();
        var prev = 0.0;
        foreach (var t in truth) { bounds.Add((prev + 0.25, t.Start - 0.25)); prev = t.End; }
        bounds.Add((prev + 0.25, fileSeconds - 0.25));
        foreach (var (a, b) in bounds.Where(x => x.Item2 > x.Item1))
        {
            silent += b - a;
            silentCovered += segs.Sum(s => Overlap(a, b, s.StartSeconds, s.EndSeconds));
        }
        Assert.True(silent > 5, $"{what}: the generated file has too little silence to test");
        Assert.True(silentCovered / silent < 0.1, $"{what}: {silentCovered / silent:P0} of the silences is inside segments");
    }

    [Theory]
    [InlineData("wav16k.wav", null)]
    [InlineData("flac44k.flac", 44100)]
    [InlineData("mp3.mp3", 22050)]
    [InlineData("wav8k.wav", 8000)]
    public void Segments_cover_the_spoken_parts_and_not_the_silences(string name, int? rate)
    {
        var wav = Path.Combine(f.WorkDir, "src-" + name + ".wav");
        var truth = f.Speech.WriteWav(wav, 60, new Random(name.Length), minGap: 1.2, maxGap: 3);
        var path = wav;
        if (rate is not null || !name.EndsWith(".wav"))
        {
            path = Path.Combine(f.WorkDir, name);
            SpeechCorpusGenerator.Encode(wav, path, rate);
        }
        var output = Run([new ProcessItem(0, path, 0, 60)], batch: 16);
        Assert.Empty(output.Failures);
        AssertCoversSpeechNotSilence(truth, output.Segments, 60, name);
    }

    [Fact]
    public void Batched_and_unbatched_inference_give_the_same_segments()
    {
        var items = new List<ProcessItem>();
        for (var i = 0; i < 6; i++)
        {
            var p = Path.Combine(f.WorkDir, $"batch-{i}.wav");
            f.Speech.WriteWav(p, 20 + 7 * i, new Random(100 + i));
            items.Add(new ProcessItem(i, p, 0, 20 + 7 * i));
        }
        var one = Run(items, batch: 1);
        var many = Run(items, batch: 32);
        Assert.NotEmpty(one.Segments);
        Assert.Equal(one.Segments.Count, many.Segments.Count);
        foreach (var (a, b) in one.Segments.Zip(many.Segments))
        {
            Assert.Equal(a.FileIndex, b.FileIndex);
            Assert.Equal(a.StartSeconds, b.StartSeconds, 3);
            Assert.Equal(a.EndSeconds, b.EndSeconds, 3);
        }
    }

    [Fact]
    public void A_long_item_split_into_sub_streams_gives_the_segments_of_an_unsplit_run_within_a_window()
    {
        var p = Path.Combine(f.WorkDir, "long.wav");
        f.Speech.WriteWav(p, 300, new Random(5));
        var split = Run([new ProcessItem(0, p, 0, 300)], batch: 8, new VadOptions { SubStreamSeconds = 30, WarmUpSeconds = 5 });
        var whole = Run([new ProcessItem(0, p, 0, 300)], batch: 8, new VadOptions { SubStreamSeconds = null });
        AssertSameSpeech(whole.Segments, split.Segments, 300);
    }

    [Fact]
    public void A_file_cut_across_shards_neither_gains_nor_loses_speech_at_the_cut()
    {
        var p = Path.Combine(f.WorkDir, "cut.wav");
        var truth = f.Speech.WriteWav(p, 120, new Random(9));
        // Cut in the middle of an utterance: the hardest place.
        var mid = truth.First(t => t.Start > 50);
        var cut = Math.Round((mid.Start + mid.End) / 2, 3);
        var whole = Run([new ProcessItem(0, p, 0, 120)], batch: 8).Segments;
        var parts = Run([new ProcessItem(0, p, 0, cut)], batch: 8).Segments.Concat(Run([new ProcessItem(0, p, cut, 120)], batch: 8).Segments).ToList();
        var merged = SegmentMerger.MergeAtCuts(parts, [cut]);
        Assert.Contains(merged, s => s.StartSeconds < cut && s.EndSeconds > cut); // the utterance stays one segment
        AssertSameWithinAWindow(whole, merged);
    }

    [Fact]
    public void A_corrupt_file_is_a_failure_of_that_file_and_the_shard_goes_on()
    {
        var good = Path.Combine(f.WorkDir, "good.wav");
        f.Speech.WriteWav(good, 30, new Random(3));
        var bad = Path.Combine(f.WorkDir, "bad.flac");
        File.WriteAllText(bad, "definitely not flac");
        var truncated = Path.Combine(f.WorkDir, "missing.wav");
        var output = Run([new ProcessItem(0, good, 0, 30), new ProcessItem(1, bad, 0, 10), new ProcessItem(2, truncated, 0, 5)], batch: 8);
        Assert.NotEmpty(output.Segments);
        Assert.All(output.Segments, s => Assert.Equal(0, s.FileIndex));
        Assert.Equal([1, 2], output.Failures.Select(x => x.FileIndex).Order());
        Assert.Contains("ffmpeg", output.Failures.Single(x => x.FileIndex == 1).Error);
        Assert.False(string.IsNullOrWhiteSpace(output.Failures.Single(x => x.FileIndex == 2).Error));
    }

    /// <summary>
    /// Silero's recurrent state remembers for tens of seconds, so a stream started fresh (a sub-stream
    /// after its warm-up, or the second range of a cut file) can move a boundary by a window or two
    /// and, rarely, decide a ~100-200 ms pause differently long after the start. What must hold:
    /// the same speech is covered (to within 1.5% of the spoken time, i.e. boundaries within about a
    /// window), nearly every segment matches one of the other run within 64 ms at both ends, and
    /// the counts differ by at most a few merges.
    /// </summary>
    private static void AssertSameSpeech(IReadOnlyList<FoundSegment> expected, IReadOnlyList<FoundSegment> actual, double seconds)
    {
        double Covered(IReadOnlyList<FoundSegment> x) => x.Sum(s => s.EndSeconds - s.StartSeconds);
        double Common(IReadOnlyList<FoundSegment> a, IReadOnlyList<FoundSegment> b) =>
            a.Sum(s => b.Sum(t => Overlap(s.StartSeconds, s.EndSeconds, t.StartSeconds, t.EndSeconds)));
        var common = Common(expected, actual);
        var symmetricDifference = Covered(expected) + Covered(actual) - 2 * common;
        Assert.True(symmetricDifference / Covered(expected) < 0.015,
            $"speech covered differs by {symmetricDifference:0.000} s of {Covered(expected):0.000} s");
        var matched = expected.Count(a => actual.Any(b => Math.Abs(a.StartSeconds - b.StartSeconds) <= 0.064 && Math.Abs(a.EndSeconds - b.EndSeconds) <= 0.064));
        Assert.True(matched >= expected.Count * 0.85, $"only {matched} of {expected.Count} segments match within 64 ms");
        Assert.InRange(actual.Count, expected.Count - Math.Max(2, expected.Count / 20), expected.Count + Math.Max(2, expected.Count / 20));
        Assert.True(seconds > 0);
    }

    private static void AssertSameWithinAWindow(IReadOnlyList<FoundSegment> expected, IReadOnlyList<FoundSegment> actual, double tolerance = 0.032 + 1e-6)
    {
        Assert.True(expected.Count == actual.Count,
            $"expected {expected.Count} segments, got {actual.Count}:\n{string.Join("\n", expected.Select(s => $"{s.StartSeconds:0.000}-{s.EndSeconds:0.000}"))}\nvs\n{string.Join("\n", actual.Select(s => $"{s.StartSeconds:0.000}-{s.EndSeconds:0.000}"))}");
        foreach (var (a, b) in expected.Zip(actual))
        {
            Assert.True(Math.Abs(a.StartSeconds - b.StartSeconds) <= tolerance, $"start {a.StartSeconds} vs {b.StartSeconds}");
            Assert.True(Math.Abs(a.EndSeconds - b.EndSeconds) <= tolerance, $"end {a.EndSeconds} vs {b.EndSeconds}");
        }
    }
}
