using Npgsql;
using Workers.Core.Options;
using Workers.Postgres.Fleet;
using Workers.Postgres.Queue;
using Workers.Postgres.Sql;
using Workers.Testing;

namespace Workers.Postgres.Tests.Queue;

/// <summary>Issue "Reliability", item 3 (queue health): retention pruning and migration 004.</summary>
[Collection(PostgresCollection.Name)]
public sealed class QueueMaintenanceTests(PostgresFixture pg)
{
    private static readonly string[] Default = ["default"];
    private static readonly RetentionOptions Retention = new() { AttemptDays = 30, StoppedWorkerDays = 7 };

    [Fact]
    public async Task A_dead_shards_last_error_survives_pruning_while_its_older_failed_attempts_go()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 1, maxAttempts: 3);
        var queue = new ShardQueue(db.DataSource, new QueueOptions { MaxAttempts = 3, RetryBaseSeconds = 0, RetryJitter = 0 }, time);
        var w = new WorkerIdentity("w", "n");
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var s = Assert.Single(await queue.ClaimAsync(w, Default));
            await queue.FailAsync(s, w, new ShardFailure("DecodeError", $"attempt {attempt} failed", "stack", "log"));
        }
        Assert.Equal("dead", await db.ScalarAsync<string>("SELECT state::text FROM shards"));

        time.Advance(TimeSpan.FromDays(365));
        var pruned = await new QueueMaintenance(db.DataSource, Retention, time).PruneAsync();

        Assert.Equal((PruneStatus.Pruned, 2L), (pruned.Status, pruned.AttemptsDeleted));
        Assert.Equal("3: attempt 3 failed", await db.ScalarAsync<string>("SELECT string_agg(attempt || ': ' || error_message, ',') FROM shard_attempts"));
        Assert.Equal("DecodeError: attempt 3 failed", await db.ScalarAsync<string>("SELECT last_error FROM shards"));
    }

    [Fact]
    public async Task Pruning_deletes_finished_attempts_past_retention_but_keeps_each_shards_latest_recent_and_running_attempts()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 4);
        var ids = await ShardIdsAsync(db);
        time.Advance(TimeSpan.FromDays(100));
        var now = time.GetUtcNow().UtcDateTime;
        DateTime Ago(double days) => now - TimeSpan.FromDays(days);

        // Shard 0: three old failures -> 1 and 2 go, 3 (the latest) stays.
        for (var a = 1; a <= 3; a++) await AttemptAsync(db, ids[0], a, "failed", Ago(41), Ago(40));
        // Shard 1: an old failure (goes), a recent failure (stays), a running attempt (stays).
        await AttemptAsync(db, ids[1], 1, "failed", Ago(41), Ago(40));
        await AttemptAsync(db, ids[1], 2, "failed", Ago(11), Ago(10));
        await AttemptAsync(db, ids[1], 3, "running", Ago(1), null);
        // Shard 2: an old attempt still marked running (never rescued) is not finished: it stays.
        await AttemptAsync(db, ids[2], 1, "running", Ago(41), null);
        await AttemptAsync(db, ids[2], 2, "succeeded", Ago(36), Ago(35));
        // Shard 3: just inside the retention: stays.
        await AttemptAsync(db, ids[3], 1, "lease_expired", Ago(31), Ago(30) + TimeSpan.FromMinutes(1));
        await AttemptAsync(db, ids[3], 2, "succeeded", Ago(29), Ago(28));

        var pruned = await new QueueMaintenance(db.DataSource, Retention, time).PruneAsync();

        Assert.Equal((PruneStatus.Pruned, 3L, 0L, false), (pruned.Status, pruned.AttemptsDeleted, pruned.WorkersDeleted, pruned.MoreLeft));
        Assert.Equal(
            $"{ids[0]}/3 {ids[1]}/2 {ids[1]}/3 {ids[2]}/1 {ids[2]}/2 {ids[3]}/1 {ids[3]}/2",
            await db.ScalarAsync<string>("SELECT string_agg(shard_id || '/' || attempt, ' ' ORDER BY shard_id, attempt) FROM shard_attempts"));
    }

    [Fact]
    public async Task Pruning_deletes_workers_stopped_longer_than_retention_but_never_crash_looping_or_running_ones()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        var now = time.GetUtcNow().UtcDateTime;
        await WorkerAsync(db, "old-stopped", "stopped", now - TimeSpan.FromDays(8));
        await WorkerAsync(db, "recent-stopped", "stopped", now - TimeSpan.FromDays(6));
        await WorkerAsync(db, "old-crash-looping", "crash_looping", now - TimeSpan.FromDays(30));
        await WorkerAsync(db, "stale-running", "running", null, heartbeat: now - TimeSpan.FromDays(30));

        var pruned = await new QueueMaintenance(db.DataSource, Retention, time).PruneAsync();

        Assert.Equal((PruneStatus.Pruned, 1L), (pruned.Status, pruned.WorkersDeleted));
        Assert.Equal("old-crash-looping recent-stopped stale-running",
            await db.ScalarAsync<string>("SELECT string_agg(id, ' ' ORDER BY id) FROM workers"));
    }

    [Fact]
    public async Task A_large_prune_runs_in_batches_of_Retention_BatchSize_until_every_old_row_is_gone()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 50);
        time.Advance(TimeSpan.FromDays(100));
        var old = time.GetUtcNow().UtcDateTime - TimeSpan.FromDays(40);
        await AttemptsForEveryShardAsync(db, 5, old); // 50 x 5: 200 prunable, the 50 latest kept
        for (var i = 0; i < 45; i++) await WorkerAsync(db, $"w{i:00}", "stopped", old);

        var pruned = await new QueueMaintenance(db.DataSource, new RetentionOptions { BatchSize = 30 }, time).PruneAsync();

        // Attempts: 6 full batches of 30 and one of 20; workers: one of 30 and one of 15; throughput minutes: one finding none.
        Assert.Equal((200L, 45L, 7 + 2 + 1, false), (pruned.AttemptsDeleted, pruned.WorkersDeleted, pruned.Batches, pruned.MoreLeft));
        Assert.Equal(50L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE attempt = 5"));
        Assert.Equal(50L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM workers"));
    }

    [Fact]
    public async Task A_prune_capped_by_Retention_MaxBatchesPerPrune_says_more_is_left_and_the_next_prune_goes_on()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 50);
        time.Advance(TimeSpan.FromDays(100));
        await AttemptsForEveryShardAsync(db, 5, time.GetUtcNow().UtcDateTime - TimeSpan.FromDays(40));
        var maintenance = new QueueMaintenance(db.DataSource, new RetentionOptions { BatchSize = 30, MaxBatchesPerPrune = 2 }, time);

        var first = await maintenance.PruneAsync();
        Assert.Equal((60L, true), (first.AttemptsDeleted, first.MoreLeft));
        long total = first.AttemptsDeleted;
        for (var round = 0; round < 10 && (await maintenance.PruneAsync()) is var next; round++)
        {
            total += next.AttemptsDeleted;
            if (!next.MoreLeft) break;
        }
        Assert.Equal(200L, total);
        Assert.Equal(50L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts"));
    }

    [Fact]
    public async Task While_one_node_prunes_another_nodes_prune_skips_at_once_and_deletes_nothing()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 10);
        time.Advance(TimeSpan.FromDays(100));
        var old = time.GetUtcNow().UtcDateTime - TimeSpan.FromDays(40);
        await AttemptsForEveryShardAsync(db, 2, old);
        await WorkerAsync(db, "gone", "stopped", old);
        var nodeA = new QueueMaintenance(db.DataSource, Retention, time);
        var nodeB = new QueueMaintenance(db.DataSource, Retention, time);

        // Stall node A's prune on the workers table (it has done the attempts and holds the prune lock).
        await using var blocker = await db.DataSource.OpenConnectionAsync();
        await using var tx = await blocker.BeginTransactionAsync();
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE workers IN EXCLUSIVE MODE", blocker, tx))
            await lockTable.ExecuteNonQueryAsync();
        var a = nodeA.PruneAsync();
        await WaitForLockWaiterOnWorkersAsync(db, a);

        var b = await nodeB.PruneAsync();
        Assert.Equal(PruneResult.Locked, b);

        await tx.RollbackAsync();
        var resultA = await a;
        Assert.Equal((PruneStatus.Pruned, 10L, 1L), (resultA.Status, resultA.AttemptsDeleted, resultA.WorkersDeleted));
        // The lock is released afterwards: node B may prune now (nothing left).
        var again = await nodeB.PruneAsync();
        Assert.Equal((PruneStatus.Pruned, 0L, 0L), (again.Status, again.AttemptsDeleted, again.WorkersDeleted));
    }

    [Fact]
    public async Task A_prune_lock_held_elsewhere_makes_prune_skip_until_it_is_released()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 3);
        time.Advance(TimeSpan.FromDays(100));
        await AttemptsForEveryShardAsync(db, 2, time.GetUtcNow().UtcDateTime - TimeSpan.FromDays(40));
        var maintenance = new QueueMaintenance(db.DataSource, Retention, time);

        await using var other = await db.DataSource.OpenConnectionAsync();
        Assert.True(await LockStatementAsync(other, "MaintenanceTryLock"));
        Assert.Equal(PruneStatus.Locked, (await maintenance.PruneAsync()).Status);
        Assert.Equal(6L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts"));

        Assert.True(await LockStatementAsync(other, "MaintenanceUnlock"));
        Assert.Equal((PruneStatus.Pruned, 3L), ((await maintenance.PruneAsync()).Status, (await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts"))));
    }

    [Fact]
    public async Task PruneIfDue_runs_once_per_Retention_PruneIntervalMinutes_across_the_whole_fleet()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        var options = new RetentionOptions { PruneIntervalMinutes = 60 };
        var nodeA = new QueueMaintenance(db.DataSource, options, time);
        var nodeB = new QueueMaintenance(db.DataSource, options, time);

        Assert.Equal(PruneStatus.Pruned, (await nodeA.PruneIfDueAsync()).Status);
        Assert.Equal(PruneStatus.NotDue, (await nodeB.PruneIfDueAsync()).Status); // the database says A just did
        time.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal(PruneStatus.NotDue, (await nodeA.PruneIfDueAsync()).Status);
        Assert.Equal(PruneStatus.NotDue, (await nodeB.PruneIfDueAsync()).Status);
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(PruneStatus.Pruned, (await nodeB.PruneIfDueAsync()).Status);
        Assert.Equal(PruneStatus.NotDue, (await nodeA.PruneIfDueAsync()).Status);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM maintenance_runs WHERE task = 'prune'"));
    }

    [Fact]
    public void Retention_options_report_every_problem_at_once()
    {
        Assert.Empty(new RetentionOptions().Validate());
        var problems = new RetentionOptions { AttemptDays = 0, StoppedWorkerDays = 0, PruneIntervalMinutes = 0, BatchSize = 0, MaxBatchesPerPrune = 0 }.Validate();
        Assert.Equal(5, problems.Count);
        Assert.Throws<OptionsValidationException>(() => new QueueMaintenance(null!, new RetentionOptions { BatchSize = 200_000 }, TimeProvider.System));
    }

    [Fact]
    public async Task Migration_004_sets_queue_friendly_storage_options_on_the_hot_tables()
    {
        await using var db = await pg.CreateSchemaAsync();

        var shards = await ReloptionsAsync(db, "shards");
        Assert.Contains("fillfactor=85", shards);
        Assert.Contains("autovacuum_vacuum_scale_factor=0.01", shards);
        Assert.Contains("autovacuum_analyze_scale_factor=0.02", shards);
        Assert.Contains("autovacuum_vacuum_cost_limit=1000", shards);
        var workers = await ReloptionsAsync(db, "workers");
        Assert.Contains("fillfactor=70", workers);
        Assert.Contains("autovacuum_vacuum_scale_factor=0.02", workers);
        var attempts = await ReloptionsAsync(db, "shard_attempts");
        Assert.Contains("fillfactor=90", attempts);
        Assert.Contains("autovacuum_vacuum_insert_scale_factor=0.05", attempts);
    }

    [Fact]
    public async Task After_migration_004_shard_and_worker_heartbeats_are_HOT_updates_and_the_rescuer_still_has_an_index()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 1);
        var queue = new ShardQueue(db.DataSource, new QueueOptions(), time);
        var who = new WorkerIdentity("w", "n");
        var shard = Assert.Single(await queue.ClaimAsync(who, Default));
        await new WorkerRegistry(db.DataSource, time).RegisterAsync(
            new WorkerRegistration("w", "n", 1, 0, null, null, null, "CPUExecutionProvider", 1, "0", Default));
        time.Advance(TimeSpan.FromSeconds(10));
        var now = time.GetUtcNow().UtcDateTime;

        await using var conn = await db.DataSource.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using (var beat = new NpgsqlCommand(SqlCatalog.Get("ShardHeartbeat"), conn, tx))
        {
            beat.Parameters.AddWithValue("id", shard.Id);
            beat.Parameters.AddWithValue("attempt", shard.Attempt);
            beat.Parameters.AddWithValue("owner", who.Worker);
            beat.Parameters.AddWithValue("now", now);
            beat.Parameters.AddWithValue("lease", TimeSpan.FromSeconds(60));
            beat.Parameters.AddWithValue("processed", 5.0);
            Assert.Equal(1, await beat.ExecuteNonQueryAsync());
        }
        await using (var beat = new NpgsqlCommand(SqlCatalog.Get("WorkerHeartbeat"), conn, tx))
        {
            beat.Parameters.AddWithValue("id", "w");
            beat.Parameters.AddWithValue("now", now);
            beat.Parameters.Add(DbClock.ClientNow(time)); // the clock offset (migration 008): non-indexed too, so still HOT
            beat.Parameters.AddWithValue("shard", shard.Id);
            beat.Parameters.AddWithValue("attempt", shard.Attempt);
            Assert.Equal(1, await beat.ExecuteNonQueryAsync());
        }
        // Per-transaction counters: exact, no waiting for the statistics collector.
        Assert.Equal(1L, await ScalarAsync<long>(conn, tx, "SELECT pg_stat_get_xact_tuples_hot_updated('shards'::regclass)"));
        Assert.Equal(1L, await ScalarAsync<long>(conn, tx, "SELECT pg_stat_get_xact_tuples_hot_updated('workers'::regclass)"));

        await using (var off = new NpgsqlCommand("SET LOCAL enable_seqscan = off", conn, tx)) await off.ExecuteNonQueryAsync();
        var plan = new List<string>();
        await using (var explain = new NpgsqlCommand("EXPLAIN (COSTS OFF) SELECT id FROM shards WHERE state = 'running' AND lease_expires_at < now()", conn, tx))
        await using (var r = await explain.ExecuteReaderAsync())
            while (await r.ReadAsync()) plan.Add(r.GetString(0));
        Assert.Contains(plan, line => line.Contains("shards_running", StringComparison.Ordinal));
    }

    private static async Task<long[]> ShardIdsAsync(TestSchema db) =>
        await db.ScalarAsync<long[]>("SELECT array_agg(id ORDER BY id) FROM shards");

    private static async Task AttemptAsync(TestSchema db, long shard, int attempt, string outcome, DateTime started, DateTime? finished)
    {
        await using var cmd = db.DataSource.CreateCommand(
            "INSERT INTO shard_attempts (shard_id, attempt, worker, node, started_at, finished_at, outcome) VALUES (@s, @a, 'w', 'n', @start, @end, @outcome)");
        cmd.Parameters.AddWithValue("s", shard);
        cmd.Parameters.AddWithValue("a", attempt);
        cmd.Parameters.AddWithValue("start", started);
        cmd.Parameters.AddWithValue("end", (object?)finished ?? DBNull.Value);
        cmd.Parameters.AddWithValue("outcome", outcome);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task AttemptsForEveryShardAsync(TestSchema db, int attempts, DateTime finished)
    {
        await using var cmd = db.DataSource.CreateCommand(
            """
            INSERT INTO shard_attempts (shard_id, attempt, worker, node, started_at, finished_at, outcome, error_message)
            SELECT s.id, n, 'w', 'n', @at, @at, 'failed', 'attempt ' || n FROM shards s, generate_series(1, @n) n
            """);
        cmd.Parameters.AddWithValue("at", finished);
        cmd.Parameters.AddWithValue("n", attempts);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task WorkerAsync(TestSchema db, string id, string state, DateTime? stoppedAt, DateTime? heartbeat = null)
    {
        await using var cmd = db.DataSource.CreateCommand(
            """
            INSERT INTO workers (id, node, pid, slot, execution_provider, threads, version, queues, state, started_at, heartbeat_at, stopped_at)
            VALUES (@id, 'n', 1, 0, 'CPUExecutionProvider', 1, '0', '{default}', @state, @hb, @hb, @stopped)
            """);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("state", state);
        cmd.Parameters.AddWithValue("hb", heartbeat ?? stoppedAt ?? throw new ArgumentException("a time is needed"));
        cmd.Parameters.AddWithValue("stopped", (object?)stoppedAt ?? DBNull.Value);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<bool> LockStatementAsync(NpgsqlConnection conn, string name)
    {
        await using var cmd = new NpgsqlCommand(SqlCatalog.Get(name), conn);
        cmd.Parameters.AddWithValue("task", QueueMaintenance.PruneTask);
        return (bool)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>Waits until a session of this schema waits for a lock on workers (the stalled prune), or the prune ends.</summary>
    private static async Task WaitForLockWaiterOnWorkersAsync(TestSchema db, Task prune)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!prune.IsCompleted && waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (await db.ScalarAsync<long>("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'workers'::regclass") > 0) return;
            await Task.Delay(20); // polls PostgreSQL's lock table: the server, not this process, knows when the prune waits
        }
        await prune; // surfaces its exception, if it failed
        Assert.Fail("the prune never waited on the workers table");
    }

    private static async Task<string> ReloptionsAsync(TestSchema db, string table) =>
        string.Join(",", await db.ScalarAsync<string[]>("SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = @t::regclass", ("t", table)));

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, NpgsqlTransaction tx, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }
}
