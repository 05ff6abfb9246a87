using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Vad;

public class VadBatcherLongItemTests
{
    // 20 s and a partial window; 2 s sub-streams (63 windows) after a 0.25 s warm-up (8 windows):
    // 10 sub-streams.
    private static readonly float[] LongAudio = TestAudio.Speechy(2024, 20 * 16000 + 123);

    private static VadOptions Split() => new() { SubStreamSeconds = 2, WarmUpSeconds = 0.25, RetainProbabilities = true };

    private static VadOptions Whole() => new() { SubStreamSeconds = null, RetainProbabilities = true };

    private static VadItemResult RunOne(VadOptions options, int capacity, int memoryWindows, long? expectedSamples, IVadAudioSource? source = null, FakeVadModel? model = null)
    {
        model ??= new FakeVadModel(capacity, memoryWindows, countsForever: false);
        using var batcher = new VadBatcher(model, options);
        batcher.Enqueue(new VadItem(1, source ?? new MemorySource(LongAudio, seed: 3), expectedSamples));
        var results = new List<VadItemResult>();
        batcher.RunUntilIdle(results);
        return Assert.Single(results);
    }

    [Theory]
    [InlineData(32)]
    [InlineData(4)]
    public void SplitItem_GivesTheProbabilitiesAndSegmentsOfTheWholeItem_WhenTheModelForgetsWithinTheWarmUp(int capacity)
    {
        var model = new FakeVadModel(capacity, memoryWindows: 4, countsForever: false);
        var split = RunOne(Split(), capacity, 4, LongAudio.Length, model: model);
        var whole = RunOne(Whole(), capacity, 4, LongAudio.Length);

        Assert.True(split.Succeeded, split.Error?.ToString());
        Assert.Equal(LongAudio.Length, split.TotalSamples);
        Assert.Equal(whole.Probabilities, split.Probabilities);
        Assert.Equal(whole.Segments, split.Segments);
        Assert.True(split.Segments.Count >= 5);
        Assert.Equal(Math.Min(capacity, 10), model.LargestBatch); // one item, scored 10 wide
    }

    [Fact]
    public void SplitItem_Differs_WhenTheModelRemembersLongerThanTheWarmUp()
    {
        // The control for the test above: with 16 windows of memory, 8 of warm-up are not enough.
        var split = RunOne(Split(), 32, memoryWindows: 16, LongAudio.Length);
        var whole = RunOne(Whole(), 32, memoryWindows: 16, LongAudio.Length);

        Assert.Equal(whole.Probabilities!.Length, split.Probabilities!.Length);
        Assert.NotEqual(whole.Probabilities, split.Probabilities);
    }

    [Theory]
    [InlineData(2.0)] // probed too long: the last sub-streams find no audio in their range
    [InlineData(0.5)] // probed too short: the last sub-stream reads on to the end
    public void ProbedLengthThatIsWrong_StillGivesTheWholeItem(double factor)
    {
        var split = RunOne(Split(), 32, 4, (long)(LongAudio.Length * factor));
        var whole = RunOne(Whole(), 32, 4, null);

        Assert.True(split.Succeeded, split.Error?.ToString());
        Assert.Equal(LongAudio.Length, split.TotalSamples);
        Assert.Equal(whole.Probabilities, split.Probabilities);
        Assert.Equal(whole.Segments, split.Segments);
    }

    [Fact]
    public void ItemLongerThanProbed_KeepsEveryProbability()
    {
        // Probed at 1000 samples: one sub-stream, whose probability buffer must grow to 1250 windows.
        var audio = TestAudio.Speechy(77, 40 * 16000);
        var result = RunOne(Split(), 8, 4, 1000, new MemorySource(audio, 1));

        Assert.Equal(audio.Length, result.TotalSamples);
        Assert.Equal(new FakeVadModel(1, 4, countsForever: false).ScoreAlone(audio), result.Probabilities);
    }

    [Fact]
    public void SplitItem_WithoutRetainedProbabilities_GivesTheSameSegments()
    {
        var options = Split();
        options.RetainProbabilities = false;
        var split = RunOne(options, 32, 4, LongAudio.Length);
        var whole = RunOne(Whole(), 32, 4, LongAudio.Length);

        Assert.Null(split.Probabilities);
        Assert.Equal(whole.Segments, split.Segments);
    }

    [Fact]
    public void SplitItemsAndShortItems_ShareTheBatch()
    {
        var model = new FakeVadModel(8, 4, countsForever: false);
        using var batcher = new VadBatcher(model, Split());
        var shortAudio = TestAudio.Speechy(5, 3 * 16000);
        batcher.Enqueue(new VadItem(1, new MemorySource(LongAudio, 1), LongAudio.Length));
        batcher.Enqueue(new VadItem(2, new MemorySource(shortAudio, 2), shortAudio.Length));
        batcher.Enqueue(new VadItem(3, new MemorySource(LongAudio, 3), LongAudio.Length));
        var results = new List<VadItemResult>();
        batcher.RunUntilIdle(results);

        var byId = results.ToDictionary(r => r.ItemId);
        var whole = RunOne(Whole(), 32, 4, null);
        Assert.Equal(whole.Segments, byId[1].Segments);
        Assert.Equal(whole.Segments, byId[3].Segments);
        Assert.Equal(whole.Probabilities, byId[3].Probabilities);
        Assert.Equal(new FakeVadModel(1, 4, countsForever: false).ScoreAlone(shortAudio), byId[2].Probabilities);
    }

    [Fact]
    public void SourceThatReadsDifferentlyDependingOnWhereItOpens_FailsTheItem()
    {
        // The range starting at 2 s ends 1000 samples early, yet later ranges have audio.
        var source = new TruncatingSource(LongAudio, truncatedRangeStart: 63 * 512 - 8 * 512, length: 8 * 512 + 1000);
        var result = RunOne(Split(), 32, 4, LongAudio.Length, source);

        Assert.False(result.Succeeded);
        var error = Assert.IsType<InvalidDataException>(result.Error);
        Assert.Contains("item 1", error.Message);
    }

    private sealed class TruncatingSource(float[] audio, long truncatedRangeStart, int length) : IVadAudioSource
    {
        public ISampleReader OpenAt(long startSample) =>
            startSample == truncatedRangeStart
                ? new MemoryReader(audio[..(int)(startSample + length)], (int)startSample, seed: 1)
                : new MemoryReader(audio, (int)startSample, seed: 2);
    }
}
