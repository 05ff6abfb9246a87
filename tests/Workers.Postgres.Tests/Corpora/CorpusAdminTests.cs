using Npgsql;
using Workers.Core.Options;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Postgres.Tests.Corpora;

/// <summary>Operator actions: set-based re-runs, re-run of failed files, and audit rows that commit with their change.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CorpusAdminTests(PostgresFixture pg)
{
    private static readonly QueueOptions Options = new() { LeaseSeconds = 60, HeartbeatSeconds = 10, MaxAttempts = 1 };
    private static readonly Actor Op = new("op", "10.0.0.1");

    private static AuditRecord Audit(string action) => new(Op, action, "test");

    /// <summary>Claims every queued shard of <paramref name="queueName"/> as <paramref name="who"/> and fails each (budget 1: dead).</summary>
    private static async Task KillAllAsync(ShardQueue queue, WorkerIdentity who, string queueName)
    {
        foreach (var s in await queue.ClaimAsync(who, [queueName], max: 1000))
            Assert.Equal(FailOutcome.Dead, await queue.FailAsync(s, who, new ShardFailure("Boom", "boom")));
    }

    [Fact]
    public async Task Rerun_by_filter_requeues_exactly_the_matching_dead_shards_and_audits_the_count()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        var c = await Seed.CorpusAsync(db, time, 6, "c", maxAttempts: 1);
        var other = await Seed.CorpusAsync(db, time, 3, "other", queue: "q2", maxAttempts: 1);
        var queue = new ShardQueue(db.DataSource, Options, time);
        var w1 = new WorkerIdentity("n1/1/0", "n1");
        var w2 = new WorkerIdentity("n2/1/0", "n2");
        // c: shards 0..2 die on w1 (node n1), 3..4 on w2 (node n2), 5 stays queued; other: all die on w1.
        foreach (var s in await queue.ClaimAsync(w1, ["default"], max: 3)) await queue.FailAsync(s, w1, new ShardFailure("Boom", "boom"));
        foreach (var s in await queue.ClaimAsync(w2, ["default"], max: 2)) await queue.FailAsync(s, w2, new ShardFailure("Boom", "boom"));
        await KillAllAsync(queue, w1, "q2");
        var admin = new CorpusAdmin(db.DataSource, time);

        var byNode = await admin.RerunDeadAsync(new ShardFilter(CorpusId: c, Node: "n1"), 3, Audit("shards.rerun"));
        Assert.Equal(3, byNode.Count);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE corpus_id = @c AND state = 'queued' AND max_attempts = 4 AND id = ANY(@ids)",
            ("c", c), ("ids", byNode.ToArray())));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE corpus_id = @c AND state = 'dead'", ("c", c)));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE corpus_id = @c AND state = 'dead'", ("c", other)));

        var byQueue = await admin.RerunDeadAsync(new ShardFilter(Queue: "q2", File: "f00000"), 3, Audit("shards.rerun"));
        Assert.Equal(3, byQueue.Count); // every file of 'other' matches f00000*
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'dead'"));
        Assert.Equal(new[] { 3, 3 }, await db.ScalarAsync<int[]>("SELECT array_agg(rows_affected ORDER BY id) FROM audit_log WHERE action = 'shards.rerun'"));

        // Nothing dead left in that queue: one UPDATE of nothing, audited as 0 rows.
        Assert.Empty(await admin.RerunDeadAsync(new ShardFilter(Queue: "q2"), 3, Audit("shards.rerun")));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log WHERE action = 'shards.rerun'"));
    }

    [Fact]
    public async Task Rerun_failed_files_queues_one_shard_of_exactly_the_failed_ranges_and_the_failed_count_drops()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        var c = await Seed.CorpusAsync(db, time, 3, "c", priority: 7);
        var queue = new ShardQueue(db.DataSource, Options, time);
        var w = new WorkerIdentity("w", "n");
        var shards = await queue.ClaimAsync(w, ["default"], max: 3);
        Assert.Equal(3, shards.Count);
        Assert.True(await queue.CompleteAsync(shards[0], w, [], [new FileFailureRow(0, 10, 20, "decode error"), new FileFailureRow(0, 30, 40, "decode error 2")]));
        Assert.True(await queue.CompleteAsync(shards[1], w, [], [new FileFailureRow(1, 0, 5, "bad header")]));
        Assert.True(await queue.CompleteAsync(shards[2], w, [], [new FileFailureRow(2, 0, 60, "gone")]));
        var admin = new CorpusAdmin(db.DataSource, time);
        // Shard 2 is re-run as a whole: its failure belongs to that run, not to this action.
        await admin.RerunShardsAsync(c, [shards[2].Id], 3, Audit("shard.rerun"));

        var done = await admin.RerunFailedFilesAsync(c, 3, Audit("corpus.rerun_failed_files"));

        Assert.NotNull(done);
        Assert.Equal(2, done.Files);
        Assert.Equal(3, done.Ranges);
        Assert.Equal("3|default|7|queued|3|25", await db.ScalarAsync<string>(
            "SELECT concat_ws('|', ordinal, queue, priority, state, item_count, audio_seconds) FROM shards WHERE id = @id", ("id", done.ShardId)));
        Assert.Equal("0:0:10-20,1:0:30-40,2:1:0-5", await db.ScalarAsync<string>(
            "SELECT string_agg(ordinal || ':' || file_index || ':' || start_seconds || '-' || end_seconds, ',' ORDER BY ordinal) FROM shard_items WHERE shard_id = @id",
            ("id", done.ShardId)));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM file_failures WHERE corpus_id = @c", ("c", c))); // shard 2's, untouched
        Assert.Equal(4, await db.ScalarAsync<int>("SELECT shards FROM corpora WHERE id = @c", ("c", c)));
        var detail = await db.ScalarAsync<string>("SELECT detail FROM audit_log WHERE action = 'corpus.rerun_failed_files'");
        Assert.Contains("decode error 2", detail);
        Assert.Contains("bad header", detail);
        Assert.Null(await admin.RerunFailedFilesAsync(c, 3, Audit("corpus.rerun_failed_files"))); // nothing left: 409 at the API
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log WHERE action = 'corpus.rerun_failed_files'"));

        // No worker needed: claim and complete the new shard as a worker would; its items are the ranges.
        var claimed = await queue.ClaimAsync(w, ["default"], max: 5);
        var again = Assert.Single(claimed, s => s.Id == done.ShardId);
        Assert.Equal(new[] { (0, 10.0, 20.0), (0, 30.0, 40.0), (1, 0.0, 5.0) },
            (await queue.GetItemsAsync(again.Id)).Select(i => (i.FileIndex, i.StartSeconds, i.EndSeconds)).ToArray());
        Assert.True(await queue.CompleteAsync(again, w, [new SegmentRow(0, 11, 19)]));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM file_failures WHERE corpus_id = @c AND shard_id <> @s", ("c", c), ("s", shards[2].Id)));
    }

    [Fact]
    public async Task An_action_and_its_audit_row_commit_together_or_not_at_all()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        var c = await Seed.CorpusAsync(db, time, 4, "c", maxAttempts: 1);
        var queue = new ShardQueue(db.DataSource, Options, time);
        await KillAllAsync(queue, new WorkerIdentity("w", "n"), "default");
        var admin = new CorpusAdmin(db.DataSource, time);

        // The audit row cannot be written: the change must not happen either.
        await ExecAsync(db, """
            CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$;
            CREATE TRIGGER audit_refused BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse();
            """);
        await Assert.ThrowsAsync<PostgresException>(() => admin.RerunFailedAsync(c, 3, Audit("corpus.rerun_failed")));
        await Assert.ThrowsAsync<PostgresException>(() => admin.RerunDeadAsync(new ShardFilter(CorpusId: c), 3, Audit("shards.rerun")));
        await Assert.ThrowsAsync<PostgresException>(() => admin.CancelAsync(c, Audit("corpus.cancel")));
        await Assert.ThrowsAsync<PostgresException>(() => new QueueAdmin(db.DataSource, time).PauseAsync("default", Op));
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE corpus_id = @c AND state = 'dead'", ("c", c)));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM paused_queues"));
        Assert.True(await db.ScalarAsync<bool>("SELECT cancelled_at IS NULL FROM corpora WHERE id = @c", ("c", c)));

        // The change fails: no audit row.
        await ExecAsync(db, """
            DROP TRIGGER audit_refused ON audit_log;
            CREATE TRIGGER shards_refused BEFORE UPDATE ON shards FOR EACH ROW EXECUTE FUNCTION refuse();
            """);
        await Assert.ThrowsAsync<PostgresException>(() => admin.RerunFailedAsync(c, 3, Audit("corpus.rerun_failed")));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log"));

        // Both work: both commit.
        await ExecAsync(db, "DROP TRIGGER shards_refused ON shards;");
        Assert.Equal(4, (await admin.RerunFailedAsync(c, 3, Audit("corpus.rerun_failed"))).Count);
        Assert.Equal("op|10.0.0.1|corpus.rerun_failed|4", await db.ScalarAsync<string>(
            "SELECT concat_ws('|', actor, remote_address, action, rows_affected) FROM audit_log"));
    }

    private static async Task ExecAsync(TestSchema db, string sql)
    {
        await using var cmd = db.DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }
}
