using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Workers.Core.Corpora;
using Workers.Postgres.Corpora;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// Issue 14: `workers serve` hosts the lease rescuer. Before, only a worker's claim loop rescued, so
/// with no worker running (or every worker busy) a killed worker's shard stayed 'running' on the
/// dashboard indefinitely. Real process and real time: the polling below waits on `serve`.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ServeRescuesTests(PostgresFixture pg) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-cli-serve-rescue-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task Serve_alone_requeues_a_dead_workers_shard_within_two_leases()
    {
        await using var db = await pg.CreateSchemaAsync();
        var files = new List<SourceFile> { new("a.wav", 4) };
        var plan = await EnqueuePlanner.PlanAsync(new CorpusListing("folder", _dir, _dir, files, []), probe: null, 4);
        await new CorpusWriter(db.DataSource, TimeProvider.System).WriteAsync(plan, new EnqueueRequest("orphan"));
        var hangfire = "hangfire_" + Guid.NewGuid().ToString("N")[..12];
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Workers"] = db.ConnectionString,
            ["Queue__LeaseSeconds"] = "5",
            ["Queue__HeartbeatSeconds"] = "2",
            ["Queue__RescueIntervalSeconds"] = "1",
            ["Dashboard__HangfireSchema"] = hangfire,
            ["Dashboard__JobWorkers"] = "0",
        };
        var log = Path.Combine(_dir, "serve.log");
        using var serve = WorkersProcess.StartLogged(env, log, "serve", "--urls", $"http://127.0.0.1:{FreePort()}");
        try
        {
            var started = Stopwatch.StartNew();
            while (!File.Exists(log) || !File.ReadAllText(log).Contains("dashboard listening"))
            {
                Assert.True(started.Elapsed < TimeSpan.FromSeconds(60) && !serve.HasExited, "serve did not start:\n" + (File.Exists(log) ? File.ReadAllText(log) : ""));
                await Task.Delay(100); // waiting on a real process
            }

            // A worker claims and dies: nothing renews its 5 s lease, and no worker runs to come back and claim.
            var queue = new ShardQueue(db.DataSource, new() { LeaseSeconds = 5, HeartbeatSeconds = 2 }, TimeProvider.System);
            var shard = Assert.Single(await queue.ClaimAsync(new WorkerIdentity("gone/1/0", "gone", null, "test"), ["default"]));
            var claimed = Stopwatch.StartNew();
            while (await db.ScalarAsync<string>("SELECT state::text FROM shards WHERE id = @id", ("id", shard.Id)) == "running")
            {
                Assert.True(claimed.Elapsed < TimeSpan.FromSeconds(30), "serve did not rescue the shard:\n" + File.ReadAllText(log));
                await Task.Delay(200); // waiting on a real process
            }

            Assert.True(claimed.Elapsed < TimeSpan.FromSeconds(2 * 5 + 1), $"rescued after {claimed.Elapsed.TotalSeconds:0.0} s, more than two 5 s leases");
            Assert.Equal("queued", await db.ScalarAsync<string>("SELECT state::text FROM shards WHERE id = @id", ("id", shard.Id)));
            Assert.Equal("lease_expired", await db.ScalarAsync<string>("SELECT outcome::text FROM shard_attempts WHERE shard_id = @id AND attempt = @a",
                ("id", shard.Id), ("a", shard.Attempt)));
        }
        finally
        {
            if (!serve.HasExited) serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync();
            await using var drop = db.DataSource.CreateCommand($"DROP SCHEMA IF EXISTS {hangfire} CASCADE");
            await drop.ExecuteNonQueryAsync();
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
