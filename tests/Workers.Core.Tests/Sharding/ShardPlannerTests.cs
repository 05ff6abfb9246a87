using System.Diagnostics;
using Workers.Core.Sharding;
using Xunit.Abstractions;

namespace Workers.Core.Tests.Sharding;

public sealed class ShardPlannerTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-9;

    public static TheoryData<int> Seeds()
    {
        var data = new TheoryData<int>();
        for (int seed = 1; seed <= 40; seed++)
        {
            data.Add(seed);
        }

        return data;
    }

    [Fact]
    public void Plan_WorkedExample_SortsByPathSplitsLongFileAndPacksGreedily()
    {
        // Given out of order; c (25 s) is split into ceil(25 / 10) = 3 pieces cut at whole ms.
        PlanInputFile[] input = [new("c", 25), new("a", 4), new("d", 3), new("b", 4)];

        ShardPlan plan = ShardPlanner.Plan(input, targetSeconds: 10);

        Assert.Equal([new("a", 4), new("b", 4), new("c", 25), new("d", 3)], plan.Files);
        Assert.Equal(
            [
                new(0, 0, 4), new(1, 0, 4),
                new(2, 0, 8.334), new(2, 8.334, 16.667), new(2, 16.667, 25),
                new(3, 0, 3),
            ],
            plan.Items);
        Assert.Equal([0, 1, 2, 3, 4], plan.Shards.Select(s => s.Ordinal));
        Assert.Equal([(0, 2), (2, 1), (3, 1), (4, 1), (5, 1)], plan.Shards.Select(s => (s.FirstItem, s.ItemCount)));
        Assert.Equal([8, 8.334, 8.333, 8.333, 3], plan.Shards.Select(s => s.AudioSeconds), new ToleranceComparer());
        Assert.Equal(36, plan.TotalSeconds);
        Assert.Equal(10, plan.TargetSeconds);
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Plan_RandomCorpus_KeepsEveryInvariant(int seed)
    {
        var random = new Random(seed);
        double target = PickTarget(random);
        List<PlanInputFile> input = GenerateCorpus(random, target, fileCount: random.Next(1, 400));

        ShardPlan plan = ShardPlanner.Plan(input, target);

        AssertInvariants(input, target, plan);
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Plan_SameFilesInAnyOrder_GivesTheSamePlan(int seed)
    {
        var random = new Random(seed);
        double target = PickTarget(random);
        List<PlanInputFile> input = GenerateCorpus(random, target, fileCount: random.Next(1, 400));
        ShardPlan expected = ShardPlanner.Plan(input, target);

        PlanInputFile[] shuffled = [.. input];
        random.Shuffle(shuffled);
        ShardPlan fromShuffled = ShardPlanner.Plan(shuffled, target);
        ShardPlan fromReversed = ShardPlanner.Plan(Enumerable.Reverse(input), target);

        foreach (ShardPlan actual in new[] { fromShuffled, fromReversed })
        {
            Assert.Equal(expected.Files, actual.Files);
            Assert.Equal(expected.Items, actual.Items);
            Assert.Equal(expected.Shards, actual.Shards);
            Assert.Equal(expected.TotalSeconds, actual.TotalSeconds);
        }
    }

    [Theory]
    [InlineData(1800.0)]
    [InlineData(600.0)]
    [InlineData(7.5)]
    public void Plan_FilesExactMultiplesOfTarget_SplitIntoFullTargetPieces(double target)
    {
        PlanInputFile[] input = [new("a", target), new("b", 2 * target), new("c", 10 * target)];

        ShardPlan plan = ShardPlanner.Plan(input, target);

        AssertInvariants(input, target, plan);
        Assert.Equal(13, plan.Shards.Count);
        Assert.All(plan.Shards, s => Assert.Equal(1, s.ItemCount));
        Assert.All(plan.Items, item => Assert.Equal(target, item.EndSeconds - item.StartSeconds, Tolerance));
    }

    [Fact]
    public void Plan_OneGiantFile_IsSplitIntoConsecutiveShardsOfEqualPieces()
    {
        double duration = 500 * 3600 + 0.123456789; // 500 h, not on a millisecond
        PlanInputFile[] input = [new("giant.flac", duration)];

        ShardPlan plan = ShardPlanner.Plan(input, ShardPlanner.DefaultTargetSeconds);

        AssertInvariants(input, ShardPlanner.DefaultTargetSeconds, plan);
        Assert.Equal(1001, plan.Items.Count); // ceil(1,800,000.123 / 1800)
        Assert.Equal(1001, plan.Shards.Count);
        Assert.Equal(duration, plan.Items[^1].EndSeconds);
    }

    [Fact]
    public void Plan_ManyTinyFiles_FillShardsUpToTheTarget()
    {
        var random = new Random(7);
        var input = new List<PlanInputFile>();
        for (int i = 0; i < 20_000; i++)
        {
            input.Add(new($"tiny/{i:D6}.wav", 0.001 + (random.NextDouble() * 0.5)));
        }

        ShardPlan plan = ShardPlanner.Plan(input, targetSeconds: 60);

        AssertInvariants(input, 60, plan);
        Assert.All(plan.Shards.SkipLast(1), s => Assert.True(s.AudioSeconds > 59.5, $"shard {s.Ordinal} holds only {s.AudioSeconds} s"));
    }

    [Fact]
    public void Plan_ManyTinyItems_AreSplitByCountAsWellAsDuration()
    {
        // Issue 13: 10^6 manifest lines of 0.001 s became one shard (1,000 s < the 30-minute
        // target) and its worker peaked at 1.8 GB. Before the cap this plan had one shard.
        var input = new List<PlanInputFile>();
        for (int i = 0; i < 12_000; i++)
        {
            input.Add(new($"tiny/{i:D6}.wav", 0.001));
        }

        ShardPlan plan = ShardPlanner.Plan(input, ShardPlanner.DefaultTargetSeconds);

        AssertInvariants(input, ShardPlanner.DefaultTargetSeconds, plan);
        Assert.Equal([5_000, 5_000, 2_000], plan.Shards.Select(s => s.ItemCount));
    }

    [Fact]
    public void Plan_ItemCap_AppliesToPiecesOfASplitFileToo()
    {
        // A sibling: one long file cut into many pieces at a small target stays within the cap as well.
        PlanInputFile[] input = [new("long.wav", 100), new("short.wav", 1)];

        ShardPlan plan = ShardPlanner.Plan(input, targetSeconds: 10, maxItemsPerShard: 1);

        AssertInvariants(input, 10, plan, maxItems: 1);
        Assert.Equal(11, plan.Shards.Count);
        Assert.All(plan.Shards, s => Assert.Equal(1, s.ItemCount));
        Assert.Throws<ArgumentOutOfRangeException>(() => ShardPlanner.Plan(input, 10, maxItemsPerShard: 0));
    }

    [Fact]
    public void Plan_DurationJustBelowItsRoundedUpMillisecond_HasNoEmptyLastPiece()
    {
        // 2.007 * 1000 rounds to 2007.0000000000002, so a naive ceil takes the file as 2008 ms;
        // cut into 1 ms pieces, the last would then start and end at 2.007.
        PlanInputFile[] input = [new("edge.wav", 2.007)];

        ShardPlan plan = ShardPlanner.Plan(input, targetSeconds: 0.001);

        AssertInvariants(input, 0.001, plan);
        Assert.Equal(2007, plan.Items.Count);
        Assert.Equal(new ShardItemPlan(0, 2.006, 2.007), plan.Items[^1]);
    }

    [Fact]
    public void Plan_EmptyInput_GivesAnEmptyPlan()
    {
        ShardPlan plan = ShardPlanner.Plan([], ShardPlanner.DefaultTargetSeconds);

        Assert.Empty(plan.Files);
        Assert.Empty(plan.Items);
        Assert.Empty(plan.Shards);
        Assert.Equal(0, plan.TotalSeconds);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-3.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void Plan_FileWithoutPositiveFiniteDuration_ThrowsNamingTheFile(double duration)
    {
        PlanInputFile[] input = [new("ok.wav", 10), new("corpus/broken.wav", duration)];

        var error = Assert.Throws<ArgumentException>(() => ShardPlanner.Plan(input, 1800));

        Assert.Contains("corpus/broken.wav", error.Message);
        Assert.Equal("files", error.ParamName);
    }

    [Fact]
    public void Plan_DuplicatePath_ThrowsNamingThePath()
    {
        PlanInputFile[] input = [new("a.wav", 10), new("spk1/b.wav", 20), new("c.wav", 5), new("spk1/b.wav", 20)];

        var error = Assert.Throws<ArgumentException>(() => ShardPlanner.Plan(input, 1800));

        Assert.Contains("spk1/b.wav", error.Message);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void Plan_FileWithoutPath_Throws(string? path)
    {
        PlanInputFile[] input = [new("a.wav", 10), new(path!, 12.5)];

        var error = Assert.Throws<ArgumentException>(() => ShardPlanner.Plan(input, 1800));

        Assert.Contains("no path", error.Message);
    }

    [Fact]
    public void Plan_PathsDifferingOnlyInCase_AreDistinctFiles()
    {
        PlanInputFile[] input = [new("A.wav", 1), new("a.wav", 2)];

        ShardPlan plan = ShardPlanner.Plan(input, 1800);

        Assert.Equal(["A.wav", "a.wav"], plan.Files.Select(f => f.Path));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1800.0)]
    [InlineData(0.0005)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Plan_InvalidTarget_ThrowsOutOfRange(double target)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => ShardPlanner.Plan([new("a.wav", 10)], target));

        Assert.Equal("targetSeconds", error.ParamName);
        Assert.Contains("finite number of seconds", error.Message);
    }

    [Fact]
    public void TotalSeconds_FollowsFilesInACopy()
    {
        ShardPlan plan = ShardPlanner.Plan([new("a", 4), new("b", 6)], 10);

        ShardPlan copy = plan with { Files = [new("a", 1)] };

        Assert.Equal(10, plan.TotalSeconds);
        Assert.Equal(1, copy.TotalSeconds);
    }

    [Fact]
    public void Plan_400kFiles_KeepsEveryInvariant()
    {
        var random = new Random(400_000);
        var input = new List<PlanInputFile>(400_000);
        for (int i = 0; i < 400_000; i++)
        {
            input.Add(new($"/corpora/big/speaker{random.Next(20_000):D5}/utt{i:D7}.flac", 1 + (random.NextDouble() * 599)));
        }

        random.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(input));

        ShardPlanner.Plan(input.Take(1000), ShardPlanner.DefaultTargetSeconds); // warm up the JIT
        var stopwatch = Stopwatch.StartNew();
        ShardPlan plan = ShardPlanner.Plan(input, ShardPlanner.DefaultTargetSeconds);
        stopwatch.Stop();
        output.WriteLine($"planned {input.Count:N0} files ({plan.TotalSeconds / 3600:N0} h) into {plan.Shards.Count:N0} shards in {stopwatch.Elapsed.TotalMilliseconds:N1} ms");

        AssertInvariants(input, ShardPlanner.DefaultTargetSeconds, plan);
    }

    private static double PickTarget(Random random) => random.Next(4) switch
    {
        0 => ShardPlanner.DefaultTargetSeconds,
        1 => 60,
        2 => 1 + Math.Round(random.NextDouble() * 3600, 3), // whole milliseconds
        _ => 0.5 + (random.NextDouble() * 900), // not on a millisecond
    };

    /// <summary>A corpus mixing tiny files, ordinary ones, exact and near multiples of the target, 10x the target and sometimes one giant file.</summary>
    private static List<PlanInputFile> GenerateCorpus(Random random, double target, int fileCount)
    {
        var files = new List<PlanInputFile>(fileCount + 1);
        for (int i = 0; i < fileCount; i++)
        {
            double duration = random.Next(7) switch
            {
                0 => 1e-4 + (random.NextDouble() * 0.05),
                1 => target * random.Next(1, 4),
                2 => target * 10 * (0.9 + (random.NextDouble() * 0.2)),
                3 => target,
                4 => Math.Max(1e-6, (target * random.Next(1, 12)) - (random.NextDouble() * 0.003)), // just under a multiple: pieces within a few ms of the target
                _ => (random.NextDouble() * target * 1.5) + 1e-6,
            };
            files.Add(new($"spk{random.Next(50):D2}/{random.Next(1_000_000):D6}-{i}.wav", duration));
        }

        if (random.Next(3) == 0)
        {
            files.Add(new("giant/session.wav", target * (200 + random.NextDouble() * 300)));
        }

        return files;
    }

    private static void AssertInvariants(IReadOnlyCollection<PlanInputFile> input, double target, ShardPlan plan, int maxItems = ShardPlanner.DefaultMaxItemsPerShard)
    {
        Assert.Equal(target, plan.TargetSeconds);

        // Files: the input, each once, sorted by ordinal path.
        Assert.Equal(input.Count, plan.Files.Count);
        Assert.Equal(input.OrderBy(f => f.Path, StringComparer.Ordinal), plan.Files);
        double total = Sum(input.Select(f => f.DurationSeconds));
        Assert.Equal(total, plan.TotalSeconds, 1e-12 * Math.Max(1, total));

        // Items: each file's items are contiguous, in path order, and tile [0, duration] exactly.
        var items = plan.Items;
        int next = 0;
        for (int fileIndex = 0; fileIndex < plan.Files.Count; fileIndex++)
        {
            PlanInputFile file = plan.Files[fileIndex];
            int first = next;
            double expectedStart = 0;
            while (next < items.Count && items[next].FileIndex == fileIndex)
            {
                ShardItemPlan item = items[next];
                Assert.Equal(expectedStart, item.StartSeconds);
                Assert.True(item.EndSeconds > item.StartSeconds, $"empty item {next} of '{file.Path}'");
                Assert.True(item.EndSeconds - item.StartSeconds <= target + Tolerance, $"item {next} of '{file.Path}' is longer than the target");
                expectedStart = item.EndSeconds;
                next++;
            }

            int pieces = next - first;
            Assert.True(pieces > 0, $"'{file.Path}' has no items");
            Assert.Equal(file.DurationSeconds, items[next - 1].EndSeconds);
            Assert.Equal(file.DurationSeconds, Sum(Enumerable.Range(first, pieces).Select(i => items[i].EndSeconds - items[i].StartSeconds)), Tolerance);

            if (file.DurationSeconds <= target)
            {
                Assert.Equal(1, pieces);
            }
            else
            {
                AssertSplitIntoEqualMillisecondPieces(file, target, items, first, pieces);
            }
        }

        Assert.Equal(items.Count, next);

        // Shards: numbered 0..n-1, tiling the items in order, each within the target, packed greedily.
        var shards = plan.Shards;
        int expectedFirst = 0;
        for (int s = 0; s < shards.Count; s++)
        {
            PlannedShard shard = shards[s];
            Assert.Equal(s, shard.Ordinal);
            Assert.Equal(expectedFirst, shard.FirstItem);
            Assert.True(shard.ItemCount > 0, $"shard {s} is empty");
            expectedFirst += shard.ItemCount;

            double audio = Sum(Enumerable.Range(shard.FirstItem, shard.ItemCount).Select(i => items[i].EndSeconds - items[i].StartSeconds));
            Assert.Equal(audio, shard.AudioSeconds, Tolerance);
            Assert.True(shard.AudioSeconds <= target + Tolerance, $"shard {s} holds {shard.AudioSeconds} s, over the target {target} s");
            Assert.True(shard.ItemCount <= maxItems, $"shard {s} holds {shard.ItemCount} items, over the cap {maxItems}");

            if (s + 1 < shards.Count && shard.ItemCount < maxItems)
            {
                // Greedy: the next shard's first item did not fit in this one.
                ShardItemPlan nextItem = items[shards[s + 1].FirstItem];
                double nextSeconds = nextItem.EndSeconds - nextItem.StartSeconds;
                Assert.True(shard.AudioSeconds + nextSeconds > target - Tolerance, $"shard {s} ({shard.AudioSeconds} s) was closed although the next item ({nextSeconds} s) fit");
            }
        }

        Assert.Equal(items.Count, expectedFirst);
    }

    private static void AssertSplitIntoEqualMillisecondPieces(PlanInputFile file, double target, IReadOnlyList<ShardItemPlan> items, int first, int pieces)
    {
        // ceil(duration / target) pieces (the target taken in whole milliseconds; the duration's
        // floating-point noise below a nanosecond ignored), cut on whole milliseconds, all within
        // 2 ms of each other.
        double targetMs = Math.Floor(target * 1000);
        Assert.Equal((int)Math.Ceiling(Math.Round(file.DurationSeconds * 1000, 6) / targetMs), pieces);

        double shortest = double.MaxValue, longest = 0;
        for (int i = first; i < first + pieces; i++)
        {
            if (i > first)
            {
                double cutMs = items[i].StartSeconds * 1000;
                Assert.Equal(Math.Round(cutMs), cutMs, 1e-6);
            }

            double length = items[i].EndSeconds - items[i].StartSeconds;
            shortest = Math.Min(shortest, length);
            longest = Math.Max(longest, length);
        }

        Assert.True(longest - shortest <= 0.002 + Tolerance, $"pieces of '{file.Path}' range from {shortest} s to {longest} s");
    }

    /// <summary>Compensated (Neumaier) sum, so the check's own rounding does not hide or fake an error.</summary>
    private static double Sum(IEnumerable<double> values)
    {
        double sum = 0, compensation = 0;
        foreach (double value in values)
        {
            double t = sum + value;
            compensation += Math.Abs(sum) >= Math.Abs(value) ? (sum - t) + value : (value - t) + sum;
            sum = t;
        }

        return sum + compensation;
    }

    private sealed class ToleranceComparer : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= Tolerance;

        public int GetHashCode(double obj) => 0;
    }
}
