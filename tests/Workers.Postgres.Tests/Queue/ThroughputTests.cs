using Workers.Core.Options;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Postgres.Tests.Queue;

/// <summary>The per-minute throughput rows written by COMPLETE, FAIL and the rescuer, and the lifetime totals (migration 007).</summary>
[Collection(PostgresCollection.Name)]
public sealed class ThroughputTests(PostgresFixture pg)
{
    private static readonly string[] Default = ["default"];
    private static readonly QueueOptions Options = new() { LeaseSeconds = 60, HeartbeatSeconds = 10, MaxAttempts = 3 };
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task History_puts_completions_failures_and_expired_leases_in_their_minutes_and_zero_fills_the_rest()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider(T0.AddSeconds(15)); // 12:00:15
        await Seed.CorpusAsync(db, time, 6);
        var queue = new ShardQueue(db.DataSource, Options, time, () => 0.5);
        var w = new WorkerIdentity("w", "n");

        var a = Assert.Single(await queue.ClaimAsync(w, Default));
        var b = Assert.Single(await queue.ClaimAsync(w, Default));
        time.Advance(TimeSpan.FromSeconds(30)); // 12:00:45
        Assert.True(await queue.CompleteAsync(a, w, [new SegmentRow(0, 1, 2)]));
        Assert.True(await queue.CompleteAsync(b, w, []));

        time.Advance(TimeSpan.FromMinutes(2)); // 12:02:45
        var c = Assert.Single(await queue.ClaimAsync(w, Default));
        Assert.Equal(FailOutcome.Retrying, await queue.FailAsync(c, w, new ShardFailure("IOException", "disk")));
        var d = Assert.Single(await queue.ClaimAsync(w, Default));
        Assert.True(await queue.CompleteAsync(d, w, []));
        var lost = Assert.Single(await queue.ClaimAsync(w, Default));

        time.Advance(TimeSpan.FromSeconds(61)); // 12:03:46: lost's lease expired
        Assert.Contains(await queue.RescueExpiredAsync(), r => r.Id == lost.Id);
        // A refused (fenced) complete adds nothing.
        Assert.False(await queue.CompleteAsync(lost, w, []));

        var points = await new HistoryReader(db.DataSource, time).MinutesAsync(6);
        Assert.Equal(6, points.Count);
        Assert.Equal(Enumerable.Range(-2, 6).Select(i => T0.UtcDateTime.AddMinutes(i)), points.Select(p => p.At.ToUniversalTime()));
        Assert.Equal(new long[] { 0, 0, 2, 0, 1, 0 }, points.Select(p => p.ShardsSucceeded));
        Assert.Equal(new double[] { 0, 0, 120, 0, 60, 0 }, points.Select(p => p.AudioSeconds));
        Assert.Equal(new long[] { 0, 0, 0, 0, 1, 1 }, points.Select(p => p.AttemptsFailed));

        var totals = await new HistoryReader(db.DataSource, time).TotalsAsync();
        Assert.Equal(new ThroughputTotals(180, 3, 2), totals);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => new HistoryReader(db.DataSource, time).MinutesAsync(0));
        Assert.Equal(HistoryReader.MaxMinutes, (await new HistoryReader(db.DataSource, time).MinutesAsync(HistoryReader.MaxMinutes)).Count);
    }

    [Fact]
    public async Task The_lifetime_totals_never_drop_on_a_rerun_and_survive_the_retention_prune_of_old_minutes()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider(T0);
        var corpus = await Seed.CorpusAsync(db, time, 2);
        var queue = new ShardQueue(db.DataSource, Options, time);
        var history = new HistoryReader(db.DataSource, time);
        var w = new WorkerIdentity("w", "n");
        foreach (var s in await queue.ClaimAsync(w, Default, max: 2)) Assert.True(await queue.CompleteAsync(s, w, []));
        Assert.Equal(new ThroughputTotals(120, 2, 0), await history.TotalsAsync());

        // Re-running the succeeded shards un-does their progress, not the work counted.
        time.Advance(TimeSpan.FromMinutes(5));
        var ids = await db.ScalarAsync<long[]>("SELECT array_agg(id ORDER BY id) FROM shards WHERE corpus_id = @c", ("c", corpus));
        var rerun = await new CorpusAdmin(db.DataSource, time).RerunShardsAsync(corpus, ids, 3, new AuditRecord(new Actor("t", null), "shard.rerun", "test"));
        Assert.Equal(2, rerun.Count);
        Assert.Equal(new ThroughputTotals(120, 2, 0), await history.TotalsAsync());
        var again = Assert.Single(await queue.ClaimAsync(w, Default));
        Assert.True(await queue.CompleteAsync(again, w, []));
        Assert.Equal(new ThroughputTotals(180, 3, 0), await history.TotalsAsync());

        // Three days on, a prune with Retention:ThroughputDays = 2 folds both old minutes (3 slot rows: the first minute
        // had two completions of shards with different ids) into the archive.
        time.Advance(TimeSpan.FromDays(3));
        var last = Assert.Single(await queue.ClaimAsync(w, Default));
        Assert.True(await queue.CompleteAsync(last, w, []));
        var pruned = await new QueueMaintenance(db.DataSource, new RetentionOptions { ThroughputDays = 2, BatchSize = 1 }, time).PruneAsync();
        Assert.Equal(3, pruned.ThroughputRowsDeleted);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(DISTINCT minute) FROM throughput_minutes"));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT rows_folded FROM throughput_archive"));
        Assert.Equal(new ThroughputTotals(240, 4, 0), await history.TotalsAsync());
    }
}
