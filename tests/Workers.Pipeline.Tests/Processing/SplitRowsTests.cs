using Workers.Pipeline.Processing;
using Workers.Pipeline.Tests.Vad;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Processing;

/// <summary>
/// Issue 10: a shard's long items are split into sub-streams only as far as it takes to fill
/// <see cref="VadOptions.SplitRows"/> batch rows (each sub-stream but the first re-scores a warm-up),
/// never shorter than <see cref="VadOptions.SubStreamSeconds"/>; the segments do not depend on it.
/// </summary>
[Collection(SileroCollection.Name)]
public sealed class SplitRowsTests(SileroFixture f)
{
    private (int LargestBatch, long Windows, long Calls, double RowsPerCall, IReadOnlyList<FoundSegment> Segments) Run(string wav, double seconds, int? optionRows, int? callerRows)
    {
        var options = new VadOptions { SubStreamSeconds = 10, WarmUpSeconds = 1, SplitRows = optionRows };
        // Remembers 3 windows only, far less than the 1 s warm-up: its probabilities do not depend on where a stream starts.
        var model = new CountingModel(new FakeVadModel(16, memoryWindows: 3, countsForever: false));
        using var batcher = new VadBatcher(model, options);
        var output = new ShardProcessor(batcher, options, null, null, callerRows).Process([new ProcessItem(0, wav, 0, seconds)], null, CancellationToken.None);
        Assert.Empty(output.Failures);
        // What the shard reports of its batches is what the model was given: rows and calls.
        Assert.Equal(model.Windows, output.ModelRows);
        Assert.Equal(model.Calls, output.ModelCalls);
        Assert.InRange(output.RowsPerCall, 1, model.Inner.LargestBatch);
        Assert.Equal(optionRows ?? callerRows ?? 16, output.SplitRows);
        return (model.Inner.LargestBatch, model.Windows, model.Calls, output.RowsPerCall, output.Segments);
    }

    [Fact]
    public void A_long_item_is_split_to_fill_SplitRows_rows_no_further_and_gives_the_same_segments()
    {
        var dir = Path.Combine(f.WorkDir, "split-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(dir);
        var wav = Path.Combine(dir, "long.wav");
        f.Speech.WriteWav(wav, 120, new Random(7));

        var full = Run(wav, 120, null, null);    // the batch's 16 rows: 120 s / 16 is under the 10 s floor, so 12 sub-streams of 10 s
        var four = Run(wav, 120, 4, null);      // 4 rows: 4 sub-streams of 30 s
        var caller = Run(wav, 120, null, 6);    // the worker's default (a CPU worker's): 6 sub-streams of 20 s
        var setting = Run(wav, 120, 4, 6);      // the setting wins over the worker's default

        Assert.Equal(12, full.LargestBatch);
        Assert.Equal(full.Windows / (double)full.Calls, full.RowsPerCall, 9);
        Assert.Equal(4, four.LargestBatch);
        Assert.Equal(6, caller.LargestBatch);
        Assert.Equal(4, setting.LargestBatch);
        // Every sub-stream but the first re-scores 1 s (32 windows): 11 warm-ups against 3.
        Assert.Equal(8 * 32, full.Windows - four.Windows);
        Assert.NotEmpty(full.Segments);
        Assert.Equal(full.Segments, four.Segments);
        Assert.Equal(full.Segments, caller.Segments);
    }

    [Fact]
    public void Sub_streams_never_go_below_the_floor_and_SplitRows_must_be_positive()
    {
        using var batcher = new VadBatcher(new FakeVadModel(4, memoryWindows: 3), new VadOptions { SubStreamSeconds = 10 });
        Assert.Equal(batcher.Planner.SubStreamWindows, batcher.SubStreamWindows);
        Assert.Throws<ArgumentOutOfRangeException>(() => batcher.SubStreamWindows = batcher.Planner.SubStreamWindows - 1);
        batcher.SubStreamWindows = 1000;
        Assert.Equal(3, batcher.Planner.Plan(2500L * 512, batcher.SubStreamWindows).Length);

        var problems = new VadOptions { SplitRows = 0 }.Validate();
        Assert.Contains(problems, p => p.Contains("SplitRows must be at least 1", StringComparison.Ordinal));
    }

    private sealed class CountingModel(FakeVadModel inner) : IVadModel
    {
        public FakeVadModel Inner => inner;
        public long Windows { get; private set; }
        public long Calls { get; private set; }
        public int BatchCapacity => inner.BatchCapacity;
        public int StateSize => inner.StateSize;
        public void ResetState(Span<float> streamState) => inner.ResetState(streamState);
        public void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize)
        {
            Windows += batchSize;
            Calls++;
            inner.Run(windows, states, probabilities, batchSize);
        }
    }
}
