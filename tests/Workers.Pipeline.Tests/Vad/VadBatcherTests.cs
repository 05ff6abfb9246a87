using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Vad;

public class VadBatcherTests
{
    // Edge lengths around the window, then speech-like items up to 20 s.
    private static float[][] Audios(int count, int seed)
    {
        var random = new Random(seed);
        int[] edges = [0, 1, 511, 512, 513, 1024, 16000 * 3 + 17];
        return Enumerable.Range(0, count)
            .Select(i => TestAudio.Speechy(seed * 1000 + i, i < edges.Length ? edges[i] : random.Next(0, 20 * 16000)))
            .ToArray();
    }

    private static VadOptions Options(bool retain = true) => new() { SubStreamSeconds = null, RetainProbabilities = retain };

    private static Dictionary<long, VadItemResult> Drain(VadBatcher batcher, List<VadItemResult>? results = null)
    {
        results ??= [];
        batcher.RunUntilIdle(results);
        return results.ToDictionary(r => r.ItemId); // throws if an item were reported twice
    }

    private static Dictionary<long, float[]> ById(float[][] audios) =>
        audios.Select((a, i) => (a, i)).ToDictionary(x => (long)x.i, x => x.a);

    // What each item gives when scored alone, upstream style, then segmented over the whole.
    internal static void AssertMatchesScoringAlone(IReadOnlyDictionary<long, float[]> audios, IReadOnlyDictionary<long, VadItemResult> results,
        VadOptions options, int memoryWindows = 4, bool countsForever = true)
    {
        var alone = new FakeVadModel(1, memoryWindows, countsForever);
        Assert.Equal(audios.Count, results.Count);
        foreach (var (id, audio) in audios)
        {
            var result = results[id];
            Assert.True(result.Succeeded, $"item {id}: {result.Error}");
            Assert.Equal(audio.Length, result.TotalSamples);
            var probabilities = alone.ScoreAlone(audio);
            if (options.RetainProbabilities) Assert.Equal(probabilities, result.Probabilities);
            Assert.Equal(SpeechTimestamps.Compute(probabilities, audio.Length, options), result.Segments);
        }
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(8, true)]
    [InlineData(32, true)]
    [InlineData(1, false)]
    [InlineData(8, false)]
    [InlineData(32, false)]
    public void AnyBatchSize_GivesEachStreamTheResultsOfScoringItAlone(int capacity, bool retainProbabilities)
    {
        var audios = Audios(40, seed: 7);
        var sources = audios.Select((a, i) => new MemorySource(a, seed: i)).ToArray();
        var model = new FakeVadModel(capacity, memoryWindows: 4, countsForever: true);
        var options = Options(retainProbabilities);
        using var batcher = new VadBatcher(model, options);
        for (int i = 0; i < audios.Length; i++) batcher.Enqueue(new VadItem(i, sources[i], audios[i].Length));

        var results = Drain(batcher);

        AssertMatchesScoringAlone(ById(audios), results, options);
        Assert.Equal(capacity, model.LargestBatch);
        Assert.True(results.Values.Count(r => r.Segments.Count >= 2) >= 10, "the audio should give several segments per item");
        Assert.All(sources.SelectMany(s => s.Readers), r => Assert.True(r.Disposed));
        Assert.True(batcher.IsIdle);
    }

    [Fact]
    public void StreamsJoiningWhileOthersRun_GetTheSameResults()
    {
        var audios = Audios(18, seed: 11);
        var model = new FakeVadModel(8, memoryWindows: 4);
        var options = Options();
        using var batcher = new VadBatcher(model, options);
        var results = new List<VadItemResult>();
        int next = 0;
        void Add(int count)
        {
            for (int end = next + count; next < end; next++) batcher.Enqueue(new VadItem(next, new MemorySource(audios[next], next), audios[next].Length));
        }

        Add(3);
        for (int i = 0; i < 5; i++) batcher.Step(results);
        Add(10);
        int fullest = 0;
        for (int i = 0; i < 40; i++)
        {
            batcher.Step(results);
            fullest = Math.Max(fullest, batcher.ActiveStreams);
        }
        Add(5);

        var byId = Drain(batcher, results);

        Assert.Equal(8, fullest);
        AssertMatchesScoringAlone(ById(audios), byId, options);
    }

    [Fact]
    public void ItemsShorterThanAWindow_OrEmpty_GetOneProbabilityPerStartedWindow()
    {
        int[] lengths = [0, 1, 511, 512, 513];
        var model = new FakeVadModel(4, memoryWindows: 4);
        using var batcher = new VadBatcher(model, Options());
        for (int i = 0; i < lengths.Length; i++) batcher.Enqueue(new VadItem(i, new MemorySource(TestAudio.Speechy(i, lengths[i]), i)));

        var results = Drain(batcher);

        for (int i = 0; i < lengths.Length; i++)
        {
            Assert.Equal(lengths[i], results[i].TotalSamples);
            Assert.Equal((lengths[i] + 511) / 512, results[i].Probabilities!.Length);
        }
    }

    [Fact]
    public void ItemFromAPlainReader_IsSegmented()
    {
        var audio = TestAudio.Speechy(3, 5 * 16000);
        using var batcher = new VadBatcher(new FakeVadModel(2, 4), Options());
        batcher.Enqueue(VadItem.FromReader(42, new MemoryReader(audio, 0, seed: 1)));

        var results = Drain(batcher);

        AssertMatchesScoringAlone(new Dictionary<long, float[]> { [42] = audio }, results, Options());
    }

    [Fact]
    public void ReaderThatFails_FailsOnlyItsItem()
    {
        var audios = Audios(10, seed: 5);
        audios[8] = TestAudio.Speechy(99, 8 * 16000);
        var sources = audios.Select((a, i) => new MemorySource(a, i) { FailAt = i == 8 ? 5000 : null }).ToArray();
        using var batcher = new VadBatcher(new FakeVadModel(4, 4), Options());
        for (int i = 0; i < audios.Length; i++) batcher.Enqueue(new VadItem(i, sources[i], audios[i].Length));

        var results = Drain(batcher);

        var failed = results[8];
        Assert.False(failed.Succeeded);
        Assert.IsType<IOException>(failed.Error);
        Assert.Empty(failed.Segments);
        results.Remove(8);
        var others = ById(audios);
        others.Remove(8);
        AssertMatchesScoringAlone(others, results, Options());
        Assert.All(sources.SelectMany(s => s.Readers), r => Assert.True(r.Disposed));
    }

    [Fact]
    public void ModelOutOfMemory_SameWindowsAreScoredAgainInSmallerRuns()
    {
        var audios = Audios(20, seed: 13);
        var model = new FakeVadModel(16, 4) { FailWhen = batch => batch > 4 };
        using var batcher = new VadBatcher(model, Options());
        for (int i = 0; i < audios.Length; i++) batcher.Enqueue(new VadItem(i, new MemorySource(audios[i], i), audios[i].Length));
        var results = new List<VadItemResult>();

        Assert.Throws<InsufficientMemoryException>(() => batcher.Step(results));
        Assert.False(batcher.IsIdle);
        batcher.MaxRunSize = 4;
        var byId = Drain(batcher, results);

        AssertMatchesScoringAlone(ById(audios), byId, Options());
        Assert.Equal(4, model.LargestBatch);
    }

    [Fact]
    public void ModelFailureHalfwayThroughAStep_ResumesWithoutScoringAnyRowTwice()
    {
        var audios = Audios(20, seed: 17);
        int calls = 0;
        var model = new FakeVadModel(16, 4) { FailWhen = _ => ++calls == 2 }; // second call of the first step
        using var batcher = new VadBatcher(model, Options()) { MaxRunSize = 5 };
        for (int i = 0; i < audios.Length; i++) batcher.Enqueue(new VadItem(i, new MemorySource(audios[i], i), audios[i].Length));
        var results = new List<VadItemResult>();

        Assert.Throws<InsufficientMemoryException>(() => batcher.Step(results));
        var byId = Drain(batcher, results);

        AssertMatchesScoringAlone(ById(audios), byId, Options());
    }

    [Fact]
    public void FakeModel_NoticesStateThatIsNotCarriedPerStream()
    {
        // Guards the tests above: scoring two streams with one shared state differs from alone.
        var a = TestAudio.Speechy(1, 16000);
        var b = TestAudio.Speechy(2, 16000);
        var model = new FakeVadModel(1, 4);
        var shared = new float[model.StateSize];
        var row = new float[576];
        var p = new float[1];
        var mixed = new List<float>();
        for (int start = 0; start + 512 <= a.Length; start += 512)
        {
            foreach (var audio in new[] { a, b })
            {
                audio.AsSpan(start, 512).CopyTo(row.AsSpan(64));
                model.Run(row, shared, p, 1);
                if (audio == a) mixed.Add(p[0]);
            }
        }
        Assert.NotEqual(model.ScoreAlone(a).Take(mixed.Count), mixed);
    }
}
