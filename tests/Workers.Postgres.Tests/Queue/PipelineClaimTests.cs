using Workers.Core.Options;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Postgres.Tests.Queue;

/// <summary>The shard's pipeline travels with the claim, and model-stage results are written and removed with their segments (migration 009).</summary>
[Collection(PostgresCollection.Name)]
public sealed class PipelineClaimTests(PostgresFixture pg)
{
    private static readonly string[] Default = ["default"];
    private static readonly QueueOptions Options = new() { LeaseSeconds = 60, HeartbeatSeconds = 10, MaxAttempts = 3 };

    [Fact]
    public async Task A_worker_claims_only_shards_of_pipelines_it_serves_and_learns_each_shards_pipeline()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        // The strict corpus is older and has higher priority: a worker without strict must skip it.
        await Seed.CorpusAsync(db, time, 2, name: "strict-corpus", priority: 5, pipeline: "strict");
        await Seed.CorpusAsync(db, time, 2, name: "vad-corpus", pipeline: "vad");
        var queue = new ShardQueue(db.DataSource, Options, time);

        var vadOnly = await queue.ClaimAsync(new WorkerIdentity("w1", "n"), Default, max: 10, pipelines: ["vad"]);
        Assert.Equal(2, vadOnly.Count);
        Assert.All(vadOnly, s => Assert.Equal("vad", s.Pipeline));
        Assert.Empty(await queue.ClaimAsync(new WorkerIdentity("w1", "n"), Default, max: 10, pipelines: ["vad", "emotion"]));
        // Its until-idle count ignores what it cannot take: nothing queued for it, 2 running.
        Assert.Equal((0L, 2L), await queue.ActiveCountsAsync(Default, pipelines: ["vad"]));
        Assert.Equal((2L, 2L), await queue.ActiveCountsAsync(Default));

        var strict = await queue.ClaimAsync(new WorkerIdentity("w2", "n"), Default, max: 10, pipelines: ["strict", "vad"]);
        Assert.Equal(2, strict.Count);
        Assert.All(strict, s => Assert.Equal("strict", s.Pipeline));
    }

    [Fact]
    public async Task Stage_results_are_written_in_the_fenced_complete_and_removed_with_the_segments_on_rerun()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        var corpus = await Seed.CorpusAsync(db, time, 2, pipeline: "emotion");
        var queue = new ShardQueue(db.DataSource, Options, time);
        var who = new WorkerIdentity("w", "n");
        var shards = await queue.ClaimAsync(who, Default, max: 2, pipelines: ["emotion"]);
        SegmentRow[] segments = [new(0, 1.25, 2.5), new(0, 3.0, 4.0)];
        SegmentResultRow[] results =
        [
            new(0, 1.25, "emotion", """{"logits": {"labels": ["happy"], "scores": [0.9]}}"""),
            new(0, 3.0, "emotion", """{"logits": {"labels": ["sad"], "scores": [0.8]}}"""),
            new(0, 1.25, "embed", """{"embedding": [0.5, -1]}"""),
        ];

        // A complete refused by the fence writes no results either.
        Assert.False(await queue.CompleteAsync(shards[0], new WorkerIdentity("other", "n"), segments, results: results));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM segment_results"));

        Assert.True(await queue.CompleteAsync(shards[0], who, segments, results: results));
        Assert.True(await queue.CompleteAsync(shards[1], who, [new SegmentRow(1, 0.5, 1.5)], results: [new(1, 0.5, "emotion", """{"logits": {"labels": ["neutral"], "scores": [0.7]}}""")]));
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM segment_results"));
        Assert.Equal("sad", await db.ScalarAsync<string>(
            "SELECT r.result->'logits'->'labels'->>0 FROM segment_results r JOIN segments s ON s.shard_id = r.shard_id AND s.file_index = r.file_index AND s.start_seconds = r.start_seconds WHERE s.start_seconds = 3.0"));

        await new CorpusAdmin(db.DataSource, time).RerunShardsAsync(corpus, [shards[0].Id], 3, new AuditRecord(new Actor("t", null), "shard.rerun", "test"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM segment_results"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM segments"));
    }
}
