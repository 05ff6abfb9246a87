using Workers.Core.Corpora;
using Workers.Core.Options;

namespace Workers.Core.Tests.Corpora;

public sealed class EnqueuePlannerTests
{
    private sealed class FixedProbe(params (double? Duration, string? Error)[] results) : IDurationProbe
    {
        public Task<IReadOnlyList<(double? Duration, string? Error)>> ProbeManyAsync(IReadOnlyList<string> fullPaths, CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<(double? Duration, string? Error)>>(results);
    }

    [Fact]
    public async Task A_duration_over_the_ceiling_is_a_failed_file_not_years_of_shards()
    {
        // Issue 13: one forged header planned 74,565 h and 149,131 shards. Whatever the source says,
        // a file over Corpus:Limits:MaxFileSeconds is listed as failed with the reason.
        var listing = new CorpusListing("folder", "/c", "/c", [new SourceFile("forged.wav", null), new SourceFile("ok.wav", null)], []);
        var limits = new CorpusLimits { MaxFileSeconds = 86_400 };

        var plan = await EnqueuePlanner.PlanAsync(listing, new FixedProbe((268_434_000, null), (10, null)), 1800, default, limits);

        Assert.Equal(10, plan.AudioSeconds);
        Assert.Equal(1, plan.ShardCount);
        var failed = Assert.Single(plan.FailedFiles);
        Assert.Equal("forged.wav", failed.Path);
        Assert.Contains("over Corpus:Limits:MaxFileSeconds (86400 s", failed.Reason);
    }

    [Fact]
    public async Task Shards_are_capped_at_Corpus_Limits_MaxItemsPerShard()
    {
        var files = Enumerable.Range(0, 10).Select(i => new SourceFile($"{i}.wav", 0.5)).ToList();
        var plan = await EnqueuePlanner.PlanAsync(new CorpusListing("manifest", "/m.jsonl", "/", files, []), null, 1800, default, new CorpusLimits { MaxItemsPerShard = 3 });
        Assert.Equal([3, 3, 3, 1], plan.Plan.Shards.Select(s => s.ItemCount));
    }
}
