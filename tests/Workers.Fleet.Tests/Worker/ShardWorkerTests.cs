using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Workers.Fleet.Resilience;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Fleet.Housekeeping;
using Workers.Fleet.Worker;
using Workers.Pipeline.Vad;
using Workers.Postgres.Cluster;
using Workers.Postgres.Corpora;
using Workers.Postgres.Migrations;
using Workers.Postgres.Queue;
using Workers.Postgres;

namespace Workers.Fleet.Tests.Worker;

/// <summary>The worker loop against a real PostgreSQL that goes away and comes back.</summary>
public sealed class ShardWorkerTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-fleet-tests-").FullName;
    private LocalCluster _cluster = null!;
    private string _cs = "";

    public async Task InitializeAsync()
    {
        var parent = Environment.GetEnvironmentVariable("WORKERS_TEST_PG_ROOT") is { Length: > 0 } p ? p : Path.GetTempPath();
        _cluster = new LocalCluster(Path.Combine(parent, "fleet-" + Guid.NewGuid().ToString("N")[..8]), durable: false);
        _cs = await _cluster.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _cluster.DestroyAsync();
        Directory.Delete(_dir, true);
    }

    [Fact]
    public async Task A_worker_waits_out_a_database_outage_and_then_finishes_the_queue()
    {
        await using var db = NpgsqlDataSource.Create(_cs);
        await new MigrationRunner(db).MigrateAsync();
        var files = new List<SourceFile>();
        for (var i = 0; i < 3; i++)
        {
            WriteWav(Path.Combine(_dir, $"f{i}.wav"), 4);
            files.Add(new SourceFile($"f{i}.wav", 4));
        }
        var plan = await EnqueuePlanner.PlanAsync(new CorpusListing("folder", _dir, _dir, files, []), probe: null, 4);
        await new CorpusWriter(db, TimeProvider.System).WriteAsync(plan, new EnqueueRequest("outage"));

        await _cluster.StopAsync(); // the database goes away before the worker's first claim

        var signals = new ShardWorker.Signals();
        var queue = new ShardQueue(db, new QueueOptions { PollSeconds = 1 }, TimeProvider.System);
        await using var listener = new ShardNotificationListener(db);
        var worker = new ShardWorker(queue, listener, new Workers.Postgres.Fleet.WorkerRegistry(db, TimeProvider.System), new WorkerOptions { UntilIdle = true, TempRoot = Path.Combine(_dir, "tmp") },
            new VadOptions(), new LoudIsSpeech(), "test", TimeProvider.System, NullLogger.Instance, signals: signals);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var run = worker.RunAsync(timeout.Token);

        Assert.True(await signals.DatabaseRetry.WaitAsync(timeout.Token) is { } e && PostgresErrors.IsTransient(e)); // it is retrying, not dead
        Assert.False(run.IsCompleted);
        await _cluster.StartAsync();

        Assert.Equal(0, await run);
        Assert.Equal(3, worker.Completed);
        await using var cmd = db.CreateCommand("SELECT count(*) FROM shards WHERE state = 'succeeded'");
        Assert.Equal(3L, await cmd.ExecuteScalarAsync());

        // The registry saw it: registered once the database was back, counted its work, and marked it stopped.
        var row = Assert.Single(await new Workers.Postgres.Fleet.WorkerRegistry(db, TimeProvider.System).ListAsync());
        Assert.Equal((worker.Identity.Worker, "stopped", 3, 12.0, "test"), (row.Id, row.State, row.ShardsCompleted, row.AudioSecondsDone, row.ExecutionProvider));
        Assert.Equal(Environment.ProcessId, row.Pid);
        Assert.Null(row.CurrentShard);
    }

    [Fact]
    public async Task A_worker_does_not_claim_while_the_temp_disk_is_below_its_free_space_floor()
    {
        await using var db = NpgsqlDataSource.Create(_cs);
        await new MigrationRunner(db).MigrateAsync();
        WriteWav(Path.Combine(_dir, "f.wav"), 4);
        var plan = await EnqueuePlanner.PlanAsync(new CorpusListing("folder", _dir, _dir, [new SourceFile("f.wav", 4)], []), probe: null, 4);
        await new CorpusWriter(db, TimeProvider.System).WriteAsync(plan, new EnqueueRequest("disk"));

        var signals = new ShardWorker.Signals();
        var queue = new ShardQueue(db, new QueueOptions { PollSeconds = 1 }, TimeProvider.System);
        await using var listener = new ShardNotificationListener(db);
        var options = new WorkerOptions { UntilIdle = true, TempRoot = Path.Combine(_dir, "tmp"), MinFreeDiskMb = long.MaxValue / (1 << 20) };
        var worker = new ShardWorker(queue, listener, new Workers.Postgres.Fleet.WorkerRegistry(db, TimeProvider.System), options,
            new VadOptions(), new LoudIsSpeech(), "test", TimeProvider.System, NullLogger.Instance, signals: signals);
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var run = worker.RunAsync(stop.Token);
        await signals.LowDisk.WaitAsync(stop.Token);
        await stop.CancelAsync();
        Assert.Equal(0, await run);
        await using var cmd = db.CreateCommand("SELECT count(*) FROM shard_attempts");
        Assert.Equal(0L, await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_worker_cut_off_from_the_database_for_a_whole_lease_drops_its_shard_and_writes_nothing()
    {
        await using var db = NpgsqlDataSource.Create(_cs);
        await new MigrationRunner(db).MigrateAsync();
        WriteWav(Path.Combine(_dir, "long.wav"), 600);
        var plan = await EnqueuePlanner.PlanAsync(new CorpusListing("folder", _dir, _dir, [new SourceFile("long.wav", 600)], []), probe: null, 600);
        await new CorpusWriter(db, TimeProvider.System).WriteAsync(plan, new EnqueueRequest("cut-off"));

        var signals = new ShardWorker.Signals();
        var queue = new ShardQueue(db, new QueueOptions { LeaseSeconds = 6, HeartbeatSeconds = 2, PollSeconds = 1 }, TimeProvider.System);
        await using var listener = new ShardNotificationListener(db);
        var worker = new ShardWorker(queue, listener, new Workers.Postgres.Fleet.WorkerRegistry(db, TimeProvider.System),
            new WorkerOptions { TempRoot = Path.Combine(_dir, "tmp") }, new VadOptions(), new SlowModel(), "test", TimeProvider.System,
            NullLogger.Instance, signals: signals);
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var run = worker.RunAsync(stop.Token);
        var claimed = await signals.Claimed.WaitAsync(stop.Token);
        await _cluster.StopAsync();
        var cutAt = DateTime.UtcNow;

        Assert.Equal(claimed.Id, await signals.LeaseLost.WaitAsync(stop.Token)); // gave up on its own, while the database is still down
        var after = DateTime.UtcNow - cutAt;
        Assert.InRange(after.TotalSeconds, 3, 30);
        await _cluster.StartAsync();
        await stop.CancelAsync();
        await run;
        await using var cmd = db.CreateCommand("SELECT count(*) FROM segments");
        Assert.Equal(0L, await cmd.ExecuteScalarAsync());
        Assert.Equal(0, worker.Completed);
    }

    [Fact]
    public async Task A_worker_times_its_claims_and_reports_them_with_its_registry_heartbeat()
    {
        await using var db = NpgsqlDataSource.Create(_cs);
        await new MigrationRunner(db).MigrateAsync();
        var queue = new ShardQueue(db, new QueueOptions { LeaseSeconds = 6, HeartbeatSeconds = 1, PollSeconds = 1 }, TimeProvider.System);
        await using var listener = new ShardNotificationListener(db);
        var registry = new Workers.Postgres.Fleet.WorkerRegistry(db, TimeProvider.System);
        var worker = new ShardWorker(queue, listener, registry, new WorkerOptions { TempRoot = Path.Combine(_dir, "tmp") }, new VadOptions(),
            new LoudIsSpeech(), "test", TimeProvider.System, NullLogger.Instance);
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        // The registry heartbeat is a housekeeping service beside the worker (issue 14), as in `workers worker`.
        var target = new RegistryHeartbeat.Target();
        target.Attach(worker);
        using var heartbeat = new RegistryHeartbeat(target, Microsoft.Extensions.Options.Options.Create(queue.Options), TimeProvider.System);
        await heartbeat.StartAsync(stop.Token);
        var run = worker.RunAsync(stop.Token);

        // Nothing is queued: the worker claims (finding nothing) about once a second, and reports every second.
        Workers.Postgres.Fleet.WorkerRow row;
        while (true)
        {
            await Task.Delay(200, stop.Token); // polls PostgreSQL's registry row, written by the real heartbeat service on its own timer
            row = Assert.Single(await registry.ListAsync(stop.Token));
            if (row.Claims >= 3) break;
        }
        await stop.CancelAsync();
        await run;
        await heartbeat.StopAsync(CancellationToken.None);

        Assert.True(worker.ClaimLatency.TakeReport().Claims >= row.Claims);
        Assert.True(row.ClaimSeconds > 0);
        Assert.NotNull(row.ClaimLastMs);
        Assert.True(row.ClaimMaxMs >= row.ClaimLastMs, $"max {row.ClaimMaxMs} < last {row.ClaimLastMs}");
        Assert.InRange(row.ClaimSeconds / row.Claims, 1e-6, 5); // a mean of seconds, not milliseconds
        var fleet = await registry.ClaimLatencyAsync();
        Assert.True(fleet.Claims >= row.Claims);
    }

    /// <summary>Takes its time: a 10-minute item lasts far longer than a 6 s lease.</summary>
    private sealed class SlowModel : IVadModel
    {
        public int BatchCapacity => 4;
        public int StateSize => 1;
        public void ResetState(Span<float> streamState) => streamState.Clear();
        public void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize)
        {
            Thread.Sleep(10); // the model is slow on purpose: the shard must outlive its lease
            probabilities[..batchSize].Fill(0.9f);
        }
    }

    // Speech-like bursts: 1 s on, 1 s off.
    private static void WriteWav(string path, double seconds) =>
        Workers.Audio.Pcm16Wav.Write(path, 16000, (int)(seconds * 16000), i => (short)(i / 16000 % 2 == 0 ? 8000 * Math.Sin(i * 0.1) : 0));
}
