using System.Diagnostics;
using Npgsql;
using Workers.Audio.Synthesis;
using Workers.Postgres.Cluster;
using Workers.Testing;
using Xunit.Abstractions;

namespace Workers.Cli.Tests;

/// <summary>
/// Issue 11: the primary PostgreSQL server is SIGKILLed mid-run and its streaming standby promoted.
/// Every `workers` process holds a two-host connection string (Target Session Attributes=read-write)
/// and finds the new primary by itself. Synchronous replication: nothing committed is lost, every
/// shard succeeds exactly once, no segment twice, no audio second missing, segments equal a clean
/// run's. Asynchronous replication, with the standby cut off from the primary so that the newest
/// commits are surely lost: a shard whose COMPLETE committed on the old primary only comes back as
/// running, is rescued when its lease expires and is redone, written once.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class FailoverTests(PostgresFixture pg, ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-failover-").FullName;
    private readonly string _clusters = Path.Combine(
        Environment.GetEnvironmentVariable("WORKERS_TEST_PG_ROOT") is { Length: > 0 } r ? r : Path.GetTempPath(), $"failover-{Guid.NewGuid():N}");
    private LocalCluster _primary = null!;
    private LocalCluster _standby = null!;

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_clusters);
        File.SetUnixFileMode(_clusters, (UnixFileMode)0b111_101_101);
        _primary = new LocalCluster(Path.Combine(_clusters, "primary"), durable: false);
        _standby = new LocalCluster(Path.Combine(_clusters, "standby"), durable: false);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _primary.DestroyAsync();
        await _standby.DestroyAsync();
        Directory.Delete(_clusters, true);
        Directory.Delete(_dir, true);
    }

    [Fact]
    public Task Synchronous_standby_promoted_after_the_primary_is_killed_loses_and_doubles_nothing() => RunAsync(synchronous: true);

    [Fact]
    public Task Asynchronous_standby_a_lost_complete_comes_back_running_and_is_rescued_and_redone_once() => RunAsync(synchronous: false);

    private async Task RunAsync(bool synchronous)
    {
        await Models.CatalogAsync();
        var corpus = Path.Combine(_dir, "corpus");
        var gen = new SpeechCorpusGenerator(Path.Combine(_dir, "espeak"));
        var rng = new Random(5);
        for (var i = 0; i < 8; i++) gen.WriteWav(Path.Combine(corpus, $"talk{i}.wav"), 60, rng); // 8 one-minute shards
        var temp = Path.Combine(_dir, "tmp");
        Dictionary<string, string?> Env(string cs, string node) => WorkersProcess.Env(cs, temp,
            ("Fleet__NodeName", node), ("Fleet__Restart__BaseDelay", "00:00:00.2"), ("Queue__LeaseSeconds", "6"),
            ("Queue__HeartbeatSeconds", "2"), ("Queue__RescueIntervalSeconds", "1"), ("Queue__RetryBaseSeconds", "1"));

        // The reference run, on the fixture's server.
        await using var clean = await pg.CreateSchemaAsync();
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env(clean.ConnectionString, "clean"), "enqueue", corpus, "--name", "c", "--shard-minutes", "1")).ExitCode);
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env(clean.ConnectionString, "clean"), "run", "--gpus", "none", "--cpu-workers", "2", "--until-idle")).ExitCode);

        var primaryCs = await _primary.StartAsync();
        var standbyCs = await _standby.StartStandbyAsync(_primary, "workers_standby");
        await using (var conn = await Open(primaryCs))
        {
            if (synchronous)
            {
                await Exec(conn, "ALTER SYSTEM SET synchronous_standby_names = 'workers_standby'");
                await Exec(conn, "ALTER SYSTEM SET synchronous_commit = 'on'");
                await Exec(conn, "SELECT pg_reload_conf()");
            }
            var want = synchronous ? "sync" : "async";
            var wait = Stopwatch.StartNew();
            while (await Scalar<string>(conn, "SELECT coalesce(max(sync_state), '') FROM pg_stat_replication WHERE application_name = 'workers_standby'") != want)
            {
                Assert.True(wait.Elapsed < TimeSpan.FromSeconds(60), $"the standby never became {want}");
                await Task.Delay(100); // polls the real primary for its standby's replication state
            }
        }
        // What every process is given: both servers, whichever accepts writes (issue 11, deliverable 4).
        var cs = new NpgsqlConnectionStringBuilder(primaryCs)
        {
            Host = $"127.0.0.1:{_primary.Port},127.0.0.1:{_standby.Port}",
            Port = 5432, // ignored: every host names its own port
            TargetSessionAttributes = "read-write",
        }.ConnectionString;

        Assert.Equal(0, (await WorkersProcess.RunAsync(Env(cs, "enq"), "enqueue", corpus, "--name", "c", "--shard-minutes", "1")).ExitCode);
        var procs = new[] { "node-a", "node-b" }.Select(n => WorkersProcess.StartLogged(Env(cs, n), Path.Combine(_dir, n + ".log"),
            "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle")).ToList();
        long[] lostShards = [];
        long[] succeededOnPrimary = [];
        try
        {
            await using (var conn = await Open(primaryCs))
            {
                await WaitAsync(conn, "SELECT count(*) FROM shard_attempts WHERE outcome = 'succeeded'", 2, procs);
                if (!synchronous)
                {
                    // Cut the standby off (its WAL receiver stops; ALTER SYSTEM works on a standby): from here the
                    // primary's commits reach nobody. (Freezing the receiver with SIGSTOP is not enough: WAL already in
                    // its socket buffer is still read after SIGCONT, so the "lost" commit sometimes survives.)
                    await using (var s = await Open(standbyCs))
                    {
                        await Exec(s, "ALTER SYSTEM SET primary_conninfo = ''");
                        await Exec(s, "SELECT pg_reload_conf()");
                    }
                    await WaitAsync(conn, "SELECT 1 - count(*) FROM pg_stat_replication WHERE application_name = 'workers_standby'", 1, procs);
                    var before = await Scalar<long>(conn, "SELECT count(*) FROM shard_attempts WHERE outcome = 'succeeded'");
                    await WaitAsync(conn, "SELECT count(*) FROM shard_attempts WHERE outcome = 'succeeded'", before + 1, procs);
                    // Which COMPLETEs are lost is read off the two servers, not guessed from finished_at (the
                    // transaction's start time: a COMPLETE that began before the cut may commit after it).
                    succeededOnPrimary = await Scalar<long[]>(conn, "SELECT coalesce(array_agg(id), '{}') FROM shards WHERE state = 'succeeded'");
                }
                else await Task.Delay(300); // real worker processes mid-shard: the next completions are in flight
                output.WriteLine($"killing the primary with {await Scalar<long>(conn, "SELECT count(*) FROM shards WHERE state = 'succeeded'")} of " +
                    $"{await Scalar<long>(conn, "SELECT count(*) FROM shards")} shards succeeded");
                _primary.Kill();
                var killedAt = Stopwatch.StartNew();
                // A real failover is not instant (a manager notices, then promotes). For these seconds every worker's
                // connection finds the primary dead and the standby read-only, and must wait, not exit (CI once saw a
                // 5 s promotion kill both workers: Npgsql's "Unable to connect to a suitable host" was not retried; 8 s reproduces it).
                if (synchronous) await Task.Delay(TimeSpan.FromSeconds(8)); // the outage the real workers must ride out
                await _standby.PromoteAsync();
                output.WriteLine($"standby promoted {killedAt.Elapsed.TotalSeconds:0.0} s after the kill");
                if (!synchronous)
                {
                    // Read at once: a lost shard is running on the new primary until its lease (6 s) expires and it is rescued.
                    await using var promoted = await Open(standbyCs);
                    var onStandby = await Scalar<long[]>(promoted, "SELECT coalesce(array_agg(id), '{}') FROM shards WHERE state = 'succeeded'");
                    lostShards = succeededOnPrimary.Except(onStandby).Order().ToArray();
                    Assert.NotEmpty(lostShards); // at least the COMPLETE awaited after the cut
                }
            }
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
            await Task.WhenAll(procs.Select(p => p.WaitForExitAsync(timeout.Token)));
            foreach (var (p, n) in procs.Zip(new[] { "node-a", "node-b" }).Where(x => x.First.ExitCode != 0))
                output.WriteLine($"{n} exited {p.ExitCode}; the end of its log:\n" +
                    string.Join('\n', File.ReadLines(Path.Combine(_dir, n + ".log")).TakeLast(30)));
            Assert.All(procs, p => Assert.Equal(0, p.ExitCode));
        }
        finally
        {
            foreach (var p in procs) { if (!p.HasExited) p.Kill(entireProcessTree: true); p.Dispose(); }
        }

        // On the promoted standby, the new primary.
        await using var db = await Open(cs);
        var shards = await Scalar<long>(db, "SELECT count(*) FROM shards");
        Assert.True(shards >= 8, $"only {shards} shards");
        Assert.Equal(shards, await Scalar<long>(db, "SELECT count(*) FROM shards WHERE state = 'succeeded'"));
        Assert.Equal(shards, await Scalar<long>(db, "SELECT count(*) FROM shard_attempts WHERE outcome = 'succeeded'"));
        Assert.Equal(0L, await Scalar<long>(db, "SELECT count(*) FROM (SELECT 1 FROM segments GROUP BY file_index, start_seconds HAVING count(*) > 1) d"));
        Assert.Equal(0.0, await Scalar<double>(db, "SELECT c.audio_seconds - (SELECT sum(audio_seconds) FROM shards WHERE state = 'succeeded') FROM corpora c"), 6);
        var attempts = await Scalar<long>(db, "SELECT count(*) FROM shard_attempts");
        var rescued = await Scalar<long>(db, "SELECT count(*) FROM shard_attempts WHERE outcome = 'lease_expired'");
        output.WriteLine($"{(synchronous ? "synchronous" : "asynchronous")}: {shards} shards, {attempts} attempts, {rescued} rescued, " +
            $"segments {await Scalar<long>(db, "SELECT count(*) FROM segments")}");
        if (!synchronous)
        {
            // Each shard completed on the old primary only is back as running on the new one. Two endings are
            // right, both seen here: its lease expires and it is rescued and redone (`1:lease_expired,2:succeeded`),
            // or the worker never got COMPLETE's answer (the primary died first), retried it against the new
            // primary, where the lease was still its own, and the same attempt succeeded there (`1:succeeded`).
            // Either way: exactly one succeeded attempt, nothing written twice, nothing missing.
            foreach (var lostShard in lostShards)
            {
                var history = await Scalar<string>(db, "SELECT string_agg(attempt || ':' || outcome, ',' ORDER BY attempt) FROM shard_attempts WHERE shard_id = @s", lostShard);
                output.WriteLine($"shard {lostShard}, whose COMPLETE was lost with the primary: attempts {history}");
                Assert.EndsWith("succeeded", history);
                Assert.Single(history.Split(','), a => a.EndsWith(":succeeded", StringComparison.Ordinal));
                Assert.True(history == "1:succeeded" || history.Contains("lease_expired", StringComparison.Ordinal), history);
            }
        }
        await using var reference = await clean.DataSource.OpenConnectionAsync();
        Assert.Equal(await SegmentsAsync(reference), await SegmentsAsync(db));
    }

    private static async Task WaitAsync(NpgsqlConnection conn, string sql, long atLeast, IReadOnlyList<Process> procs)
    {
        var wait = Stopwatch.StartNew();
        while (await Scalar<long>(conn, sql) < atLeast)
        {
            Assert.True(wait.Elapsed < TimeSpan.FromMinutes(2) && procs.All(p => !p.HasExited), $"never reached {atLeast}: {sql}");
            await Task.Delay(50); // polls the database for real worker processes to get there
        }
    }

    private static async Task<List<(string, double, double)>> SegmentsAsync(NpgsqlConnection conn)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT f.path, s.start_seconds, s.end_seconds FROM segments s JOIN files f USING (corpus_id, file_index) ORDER BY f.path, s.start_seconds", conn);
        var list = new List<(string, double, double)>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) list.Add((r.GetString(0), r.GetDouble(1), r.GetDouble(2)));
        return list;
    }

    private static async Task<NpgsqlConnection> Open(string cs)
    {
        var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(cs) { Pooling = false }.ConnectionString);
        await conn.OpenAsync();
        return conn;
    }

    private static async Task Exec(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<T> Scalar<T>(NpgsqlConnection conn, string sql, long? s = null)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        if (s is { } v) cmd.Parameters.AddWithValue("s", v);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }
}
