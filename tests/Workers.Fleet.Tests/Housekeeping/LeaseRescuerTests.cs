using Microsoft.Extensions.Logging.Abstractions;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Fleet.Housekeeping;
using Workers.Postgres.Corpora;
using Workers.Postgres.Queue;
using Workers.Testing;
using FakeClock = Microsoft.Extensions.Time.Testing.FakeTimeProvider;
using MsOptions = Microsoft.Extensions.Options.Options;

namespace Workers.Fleet.Tests.Housekeeping;

/// <summary>
/// Issue 14: the rescuer is its own service on its own timer. Before, rescue ran only in a worker's
/// claim loop, so a killed worker's shard stayed 'running' for as long as every live worker was busy
/// (measured: 16 s with 5 s leases). Time here is a FakeTimeProvider: the rescuer's timer and the
/// queue's statements (coalesce(@now, now())) both run on it, so no test waits for a lease to expire.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class LeaseRescuerTests(PostgresFixture pg)
{
    private static readonly QueueOptions Queue = new() { LeaseSeconds = 10, HeartbeatSeconds = 2, RescueIntervalSeconds = 1 };

    [Fact]
    public async Task A_killed_workers_shard_is_rescued_within_two_leases_while_every_live_worker_is_busy()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeClock(new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero));
        await EnqueueAsync(db, time, shards: 2);
        var queue = new ShardQueue(db.DataSource, Queue, time);
        var dead = new WorkerIdentity("node-a/1/0", "node-a", null, "test");
        var live = new WorkerIdentity("node-b/2/0", "node-b", null, "test");
        var killed = Assert.Single(await queue.ClaimAsync(dead, ["default"]));
        var busy = Assert.Single(await queue.ClaimAsync(live, ["default"])); // a long shard: the live worker never comes back to claim

        var signals = new LeaseRescuer.Signals();
        using var rescuer = new LeaseRescuer(new OpenDatabase(db.DataSource), MsOptions.Create(Queue), time, NullLogger<LeaseRescuer>.Instance, signals);
        await rescuer.StartAsync(CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        Assert.Empty(await signals.Rescued.WaitAsync(timeout.Token)); // the pass at start: nothing expired yet

        var elapsed = TimeSpan.Zero;
        IReadOnlyList<RescuedShard> rescued = [];
        while (rescued.Count == 0 && elapsed < 2 * Queue.Lease)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            elapsed += TimeSpan.FromSeconds(1);
            if (elapsed.TotalSeconds % Queue.HeartbeatSeconds == 0) Assert.True(await queue.HeartbeatAsync(busy, live, 1, timeout.Token)); // alive and busy
            rescued = await signals.Rescued.WaitAsync(timeout.Token);
        }
        await rescuer.StopAsync(CancellationToken.None);

        var r = Assert.Single(rescued);
        Assert.Equal((killed.Id, killed.Attempt, "queued"), (r.Id, r.Attempt, r.State));
        // Just after the lease ran out (one rescue interval at most), not when a worker next claims.
        Assert.InRange(elapsed, Queue.Lease, Queue.Lease + TimeSpan.FromSeconds(Queue.RescueIntervalSeconds));
        Assert.Equal("lease_expired", await db.ScalarAsync<string>("SELECT outcome::text FROM shard_attempts WHERE shard_id = @id AND attempt = @a",
            ("id", killed.Id), ("a", killed.Attempt)));
        Assert.Equal("running", await db.ScalarAsync<string>("SELECT state::text FROM shards WHERE id = @id", ("id", busy.Id)));
    }

    [Fact]
    public async Task Concurrent_rescuers_rescue_each_expired_attempt_once()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeClock(new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero));
        await EnqueueAsync(db, time, shards: 6);
        var queue = new ShardQueue(db.DataSource, Queue, time);
        var dead = new WorkerIdentity("node-a/1/0", "node-a", null, "test");
        Assert.Equal(6, (await queue.ClaimAsync(dead, ["default"], max: 6)).Count);
        time.Advance(Queue.Lease + TimeSpan.FromSeconds(1));

        // Three processes' rescuers, started together: the one UPDATE ... SKIP LOCKED hands each attempt to one of them.
        var signals = Enumerable.Range(0, 3).Select(_ => new LeaseRescuer.Signals()).ToList();
        var rescuers = signals.Select(s => new LeaseRescuer(new OpenDatabase(db.DataSource), MsOptions.Create(Queue), time, NullLogger<LeaseRescuer>.Instance, s)).ToList();
        await Task.WhenAll(rescuers.Select(r => r.StartAsync(CancellationToken.None)));
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var all = new List<RescuedShard>();
        foreach (var s in signals) all.AddRange(await s.Rescued.WaitAsync(timeout.Token));
        foreach (var r in rescuers) { await r.StopAsync(CancellationToken.None); r.Dispose(); }

        Assert.Equal(6, all.Count);
        Assert.Equal(6, all.Select(r => r.Id).Distinct().Count());
        Assert.Equal(6L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE outcome = 'lease_expired'"));
    }

    [Fact]
    public async Task A_rescuer_whose_database_fails_keeps_its_interval_and_rescues_once_it_is_back()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeClock(new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero));
        await EnqueueAsync(db, time, shards: 1);
        var queue = new ShardQueue(db.DataSource, Queue, time);
        var killed = Assert.Single(await queue.ClaimAsync(new WorkerIdentity("node-a/1/0", "node-a", null, "test"), ["default"]));
        time.Advance(Queue.Lease + TimeSpan.FromSeconds(1));

        // The shard table is briefly unavailable to the rescuer (renamed): its pass fails, is logged, and the next tick works.
        await ExecuteAsync(db, "ALTER TABLE shards RENAME TO shards_away");
        var signals = new LeaseRescuer.Signals();
        using var rescuer = new LeaseRescuer(new OpenDatabase(db.DataSource), MsOptions.Create(Queue), time, NullLogger<LeaseRescuer>.Instance, signals);
        await rescuer.StartAsync(CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        Assert.IsType<Npgsql.PostgresException>(await signals.Failed.WaitAsync(timeout.Token));
        Assert.False(rescuer.ExecuteTask!.IsCompleted); // still running: the failure ended only that pass
        await ExecuteAsync(db, "ALTER TABLE shards_away RENAME TO shards");
        time.Advance(TimeSpan.FromSeconds(Queue.RescueIntervalSeconds));
        var r = Assert.Single(await signals.Rescued.WaitAsync(timeout.Token));
        await rescuer.StopAsync(CancellationToken.None);
        Assert.Equal(killed.Id, r.Id);
    }

    private static async Task ExecuteAsync(TestSchema db, string sql)
    {
        await using var cmd = db.DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }

    internal static async Task EnqueueAsync(TestSchema db, TimeProvider time, int shards)
    {
        var dir = Path.GetTempPath(); // durations are given: nothing is read or probed
        var files = Enumerable.Range(0, shards).Select(i => new SourceFile($"f{i}.wav", 4)).ToList();
        var plan = await EnqueuePlanner.PlanAsync(new CorpusListing("folder", dir, dir, files, []), probe: null, 4);
        await new CorpusWriter(db.DataSource, time).WriteAsync(plan, new EnqueueRequest("rescue-" + Guid.NewGuid().ToString("N")[..8]));
    }
}
