using System.Diagnostics;
using Workers.Fleet.Supervisor;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// Issue 13: a read stuck in the kernel (a hung network mount, here a real FUSE mount whose reads
/// never return) must cost one file, never the worker. Before the fix the worker's read blocked
/// forever while its heartbeat kept the shard running, and SIGTERM's drain promise was broken.
/// A thread stuck in such a read cannot be killed, not even by SIGKILL, until the storage answers:
/// the process only ends once the mount goes away, so these tests judge by the shard's state and
/// then tear the mount down.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class HungStorageTests(PostgresFixture pg) : IDisposable
{
    private readonly string _corpus = Directory.CreateTempSubdirectory("workers-hung-corpus-").FullName;

    public void Dispose() => Directory.Delete(_corpus, true);

    private async Task<(Dictionary<string, string?> Env, TestSchema Db)> EnqueueAsync(HungMount mount, string readTimeout, string drainSeconds)
    {
        await Models.CatalogAsync();
        var db = await pg.CreateSchemaAsync();
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Workers"] = db.ConnectionString,
            ["Models__Root"] = Models.Root,
            ["Fleet__DrainSeconds"] = drainSeconds,
            ["Fleet__TempRoot"] = Path.Combine(_corpus, "tmp"),
            ["Audio__ReadTimeout"] = readTimeout,
        };
        var manifest = Path.Combine(_corpus, "hung.jsonl");
        File.WriteAllText(manifest, $"{{\"path\": \"{mount.ReadHangs}\", \"duration\": {HungMount.DataSeconds}}}\n");
        var enqueue = await WorkersProcess.RunAsync(env, "enqueue", manifest, "--name", "hung");
        Assert.True(enqueue.ExitCode == 0, enqueue.StdErr);
        return (env, db);
    }

    [Fact]
    public async Task A_read_that_makes_no_progress_fails_that_file_and_the_shard_succeeds()
    {
        using var mount = HungMount.Start();
        var (env, db) = await EnqueueAsync(mount, "00:00:02", "120");
        await using var _ = db;

        using var run = WorkersProcess.Start(env, "run", "--cpu-workers", "1", "--until-idle");
        await WaitForAsync(db, run, "SELECT count(*) FROM shards WHERE state = 'succeeded'", TimeSpan.FromMinutes(3), "the shard never succeeded");

        var error = await db.ScalarAsync<string>("SELECT error FROM file_failures");
        Assert.Contains("a read returned nothing for 2 s (Audio:ReadTimeout) and was abandoned", error);
        // Every second accounted for: the whole file is a listed failure.
        Assert.Equal(HungMount.DataSeconds, await db.ScalarAsync<double>("SELECT sum(end_seconds - start_seconds) FROM file_failures"), 3);

        mount.Dispose(); // the abandoned reads return (ENOTCONN) and the worker can end
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await run.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, run.ExitCode);
    }

    private static async Task WaitForAsync(TestSchema db, Process run, string countSql, TimeSpan limit, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (await db.ScalarAsync<long>(countSql) == 0)
        {
            Assert.True(deadline.Elapsed < limit && !run.HasExited, what);
            await Task.Delay(50); // polls the database for a real worker process to get there
        }
    }

    [Fact]
    public async Task Sigterm_drains_within_its_promise_while_a_read_is_stuck()
    {
        using var mount = HungMount.Start();
        // The read would wait 10 minutes; the drain promises 2 s.
        var (env, db) = await EnqueueAsync(mount, "00:10:00", "2");
        await using var _ = db;

        using var run = WorkersProcess.Start(env, "run", "--cpu-workers", "1");
        await WaitForAsync(db, run, "SELECT count(*) FROM shard_attempts WHERE outcome = 'running'", TimeSpan.FromMinutes(2), "the shard never started running");
        Assert.Equal(0, Signals.Send(run.Id, Signals.SigTerm));
        var drained = Stopwatch.StartNew();

        // Given back without spending the attempt, so another worker (with healthy storage) takes it.
        await WaitForAsync(db, run, "SELECT count(*) FROM shard_attempts WHERE outcome = 'released'", TimeSpan.FromSeconds(60), "the shard was not given back");
        Assert.True(drained.Elapsed < TimeSpan.FromSeconds(30), $"the drain took {drained.Elapsed}");
        Assert.Equal("queued", await db.ScalarAsync<string>("SELECT state::text FROM shards"));

        mount.Dispose();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await run.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, run.ExitCode);
    }
}
