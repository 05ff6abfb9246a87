using System.Collections.Concurrent;
using Workers.Core.Options;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Postgres.Tests.Queue;

[Collection(PostgresCollection.Name)]
public sealed class ShardQueueTests(PostgresFixture pg)
{
    private static readonly string[] Default = ["default"];
    private static readonly QueueOptions Options = new() { LeaseSeconds = 60, HeartbeatSeconds = 10, MaxAttempts = 3, RetryBaseSeconds = 30, RetryJitter = 0.25 };

    [Fact]
    public async Task Thirty_two_concurrent_claimers_claim_every_one_of_10000_shards_exactly_once()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 10_000);
        var queue = new ShardQueue(db.DataSource, Options, time);
        var claimed = new ConcurrentBag<long>();

        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var claimers = Enumerable.Range(0, 32).Select(w => Task.Run(async () =>
        {
            await start.Task;
            var who = new WorkerIdentity($"w{w}", "node-a");
            while (true)
            {
                var got = await queue.ClaimAsync(who, Default, max: 7);
                if (got.Count == 0) return;
                foreach (var s in got) claimed.Add(s.Id);
            }
        })).ToList();
        start.SetResult();
        await Task.WhenAll(claimers);

        Assert.Equal(10_000, claimed.Count);
        Assert.Equal(10_000, claimed.Distinct().Count());
        Assert.Equal(10_000L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'running' AND attempt = 1"));
        Assert.Equal(10_000L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE attempt = 1"));
        Assert.Empty(await queue.ClaimAsync(new WorkerIdentity("late", "node-b"), Default));
    }

    [Fact]
    public async Task A_worker_whose_lease_expired_cannot_heartbeat_complete_or_fail_and_the_rescuer_requeues_its_shard()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 1);
        var queue = new ShardQueue(db.DataSource, Options, time);
        var a = new WorkerIdentity("worker-a", "node-1", "0");
        var shard = Assert.Single(await queue.ClaimAsync(a, Default));
        Assert.Equal(1, shard.Attempt);
        Assert.True(await queue.HeartbeatAsync(shard, a, 10));

        time.Advance(TimeSpan.FromSeconds(61)); // the lease is 60 s and nobody renewed it

        Assert.False(await queue.HeartbeatAsync(shard, a, 20));
        Assert.False(await queue.CompleteAsync(shard, a, [new SegmentRow(0, 1, 2)]));
        Assert.Equal(FailOutcome.LeaseLost, await queue.FailAsync(shard, a, new ShardFailure("X", "boom")));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM segments"));

        var rescued = Assert.Single(await queue.RescueExpiredAsync());
        Assert.Equal(("queued", shard.Id), (rescued.State, rescued.Id));
        Assert.Equal("lease_expired", await db.ScalarAsync<string>("SELECT outcome FROM shard_attempts WHERE attempt = 1"));

        var b = new WorkerIdentity("worker-b", "node-2");
        var again = Assert.Single(await queue.ClaimAsync(b, Default));
        Assert.Equal(2, again.Attempt);
        // The old owner still cannot write, even though the shard is running again.
        Assert.False(await queue.CompleteAsync(shard, a, [new SegmentRow(0, 1, 2)]));
        Assert.True(await queue.CompleteAsync(again, b, [new SegmentRow(0, 1, 2), new SegmentRow(0, 3, 4)]));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM segments"));
        Assert.Equal("succeeded", await db.ScalarAsync<string>("SELECT state::text FROM shards"));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts"));
    }

    [Fact]
    public async Task A_repeated_complete_after_a_lost_commit_answer_reports_recorded_and_writes_nothing_twice()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 1);
        var queue = new ShardQueue(db.DataSource, Options, time);
        var a = new WorkerIdentity("worker-a", "node-1");
        var shard = Assert.Single(await queue.ClaimAsync(a, Default));
        Assert.True(await queue.CompleteAsync(shard, a, [new SegmentRow(0, 1, 2)]));
        // The worker's retry after "connection lost during COMMIT": the fence refuses it, but the
        // attempt is ours and succeeded, so the results are recorded (true), and only once.
        Assert.True(await queue.CompleteAsync(shard, a, [new SegmentRow(0, 1, 2)]));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM segments"));
        // Anyone else holding that (id, attempt) is refused as before.
        Assert.False(await queue.CompleteAsync(shard, new WorkerIdentity("worker-b", "node-2"), [new SegmentRow(0, 1, 2)]));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM segments"));
    }

    [Fact]
    public async Task A_shard_is_dead_after_its_attempt_budget_and_retries_wait_for_the_backoff()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 1, maxAttempts: 3);
        var queue = new ShardQueue(db.DataSource, Options, time, random01: () => 0.5);
        var w = new WorkerIdentity("w", "n");

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var s = Assert.Single(await queue.ClaimAsync(w, Default));
            Assert.Equal(attempt, s.Attempt);
            var outcome = await queue.FailAsync(s, w, new ShardFailure("DecodeError", $"attempt {attempt} failed", "stack", "log"));
            if (attempt < 3)
            {
                Assert.Equal(FailOutcome.Retrying, outcome);
                // 30 s * 2^(attempt-1) * (1 + 0.25 * 0.5): not claimable a moment before that.
                var delay = TimeSpan.FromSeconds(30 * Math.Pow(2, attempt - 1) * 1.125);
                time.Advance(delay - TimeSpan.FromSeconds(1));
                Assert.Empty(await queue.ClaimAsync(w, Default));
                time.Advance(TimeSpan.FromSeconds(1));
            }
            else Assert.Equal(FailOutcome.Dead, outcome);
        }
        Assert.Equal("dead", await db.ScalarAsync<string>("SELECT state::text FROM shards"));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE outcome = 'failed' AND error_type = 'DecodeError' AND log_tail = 'log'"));
        time.Advance(TimeSpan.FromDays(1));
        Assert.Empty(await queue.ClaimAsync(w, Default));
    }

    [Fact]
    public async Task An_expired_lease_with_the_budget_spent_is_dead_not_requeued()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 1, maxAttempts: 1);
        var queue = new ShardQueue(db.DataSource, Options, time);
        Assert.Single(await queue.ClaimAsync(new WorkerIdentity("w", "n"), Default));
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal("dead", Assert.Single(await queue.RescueExpiredAsync()).State);
    }

    [Fact]
    public async Task A_shard_running_ten_times_longer_than_its_lease_with_heartbeats_is_never_taken_away()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 1);
        var queue = new ShardQueue(db.DataSource, Options, time);
        var owner = new WorkerIdentity("long-runner", "node-1");
        var thief = new WorkerIdentity("thief", "node-2");
        var shard = Assert.Single(await queue.ClaimAsync(owner, Default));

        for (var t = 10; t <= 600; t += 10) // 10 minutes: ten leases
        {
            time.Advance(TimeSpan.FromSeconds(10));
            Assert.True(await queue.HeartbeatAsync(shard, owner, t), $"heartbeat at {t}s");
            Assert.Empty(await queue.RescueExpiredAsync());
            Assert.Empty(await queue.ClaimAsync(thief, Default));
        }
        Assert.Equal(600.0, await db.ScalarAsync<double>("SELECT processed_seconds FROM shards"));
        Assert.True(await queue.CompleteAsync(shard, owner, []));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts"));
    }

    [Fact]
    public async Task Claims_follow_priority_then_age_and_only_the_workers_queues()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 2, name: "low", priority: 0);
        await Seed.CorpusAsync(db, time, 2, name: "high", priority: 5);
        await Seed.CorpusAsync(db, time, 2, name: "other", queue: "gpu-big", priority: 100);
        var queue = new ShardQueue(db.DataSource, Options, time);
        async Task<string[]> ClaimNames(int max)
        {
            var got = await queue.ClaimAsync(new WorkerIdentity("w", "n"), Default, max);
            return await Task.WhenAll(got.Select(s => db.ScalarAsync<string>(
                "SELECT c.name FROM shards s JOIN corpora c ON c.id = s.corpus_id WHERE s.id = @id", ("id", s.Id))));
        }
        Assert.Equal(["high"], await ClaimNames(1));
        Assert.Equal(["high", "low"], (await ClaimNames(2)).Order());
        Assert.Equal(["low"], await ClaimNames(10)); // the gpu-big queue is not ours, whatever its priority
    }

    [Fact]
    public async Task Release_gives_a_shard_back_without_spending_an_attempt()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 1, maxAttempts: 1);
        var queue = new ShardQueue(db.DataSource, Options, time);
        var w = new WorkerIdentity("w", "n");
        var s = Assert.Single(await queue.ClaimAsync(w, Default));
        Assert.True(await queue.ReleaseAsync(s, w, "draining"));
        var again = Assert.Single(await queue.ClaimAsync(w, Default));
        Assert.Equal(2, again.Attempt);
        Assert.Equal(2, again.MaxAttempts); // the budget grew instead of the fencing token shrinking
        Assert.False(await queue.CompleteAsync(s, w, []));
        Assert.True(await queue.CompleteAsync(again, w, []));
    }

    [Fact]
    public async Task A_listening_worker_is_woken_by_an_enqueue()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await using var listener = new ShardNotificationListener(db.DataSource);
        Assert.False(await listener.WaitAsync(TimeSpan.FromMilliseconds(50))); // connects and listens
        var wait = listener.WaitAsync(TimeSpan.FromSeconds(30));
        await Seed.CorpusAsync(db, time, 3);
        Assert.True(await wait);
    }

    [Fact]
    public async Task A_listening_worker_is_woken_when_a_running_shard_completes()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 1);
        var queue = new ShardQueue(db.DataSource, Options, time);
        var w = new WorkerIdentity("w", "n");
        var s = Assert.Single(await queue.ClaimAsync(w, Default));
        await using var listener = new ShardNotificationListener(db.DataSource);
        Assert.False(await listener.WaitAsync(TimeSpan.FromMilliseconds(50))); // connects and listens; nothing since
        var wait = listener.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(await queue.CompleteAsync(s, w, []));
        Assert.True(await wait); // an --until-idle worker waiting on this shard checks again now, not at its next poll
    }

    [Fact]
    public async Task Completing_writes_segments_and_file_failures_in_the_same_transaction()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 1);
        var queue = new ShardQueue(db.DataSource, Options, time);
        var w = new WorkerIdentity("w", "n");
        var s = Assert.Single(await queue.ClaimAsync(w, Default));
        var item = Assert.Single(await queue.GetItemsAsync(s.Id));
        Assert.Equal(("f000000.wav", 0.0, 60.0, "/corpus/f000000.wav"), (item.Path, item.StartSeconds, item.EndSeconds, item.FullPath));
        Assert.True(await queue.CompleteAsync(s, w, [new SegmentRow(0, 0.5, 1.5)], [new FileFailureRow(0, 30, 60, "truncated")]));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM segments WHERE shard_id = @id", ("id", s.Id)));
        Assert.Equal("truncated", await db.ScalarAsync<string>("SELECT error FROM file_failures"));
        Assert.Equal(1, await db.ScalarAsync<int>("SELECT segments FROM shards"));
    }
}
