using System.Diagnostics;
using Npgsql;
using Workers.Audio.Synthesis;
using Workers.Testing;
using Xunit.Abstractions;

namespace Workers.Cli.Tests;

/// <summary>
/// The worker's database session is killed (pg_terminate_backend) in the middle of COMPLETE, the
/// one transaction that writes a shard's segments and marks it succeeded (issue 6). To hit that
/// exact moment, the test holds <c>LOCK TABLE segments IN EXCLUSIVE MODE</c>, so the worker's COPY
/// waits on it. Two cases:
/// <list type="bullet">
/// <item>Killed before commit: the transaction is rolled back; the worker retries COMPLETE on a new
///   connection, and the shard is written once.</item>
/// <item>Killed during commit, the outcome unknown to the worker: the session asks for synchronous
///   replication to a standby that does not exist, so its COMMIT is durable locally but waits; it
///   is terminated there (PostgreSQL then closes the connection without an answer). The worker
///   sees an error although the transaction committed; its retry is refused by the fence
///   (the shard is no longer running under its lease), so nothing is written twice.</item>
/// </list>
/// Both end with the shard succeeded once, one attempt, and segments equal to a clean run's.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CompleteInterruptedTests(PostgresFixture pg, ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-complete-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task A_session_killed_mid_complete_is_retried_and_the_shard_is_written_once_equal_to_a_clean_run()
    {
        await using var db = await pg.CreateSchemaAsync();
        var env = await PrepareAsync(db, db.ConnectionString);
        var log = Path.Combine(_dir, "run.log");

        await using var blocker = await db.DataSource.OpenConnectionAsync();
        await using var tx = await blocker.BeginTransactionAsync();
        await using (var lockCmd = new NpgsqlCommand("LOCK TABLE segments IN EXCLUSIVE MODE", blocker, tx))
            await lockCmd.ExecuteNonQueryAsync();
        using var run = WorkersProcess.StartLogged(env, log, "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle");
        try
        {
            var pid = await BlockedCopyAsync(db, run, log, notPid: 0);
            Assert.True(await db.ScalarAsync<bool>("SELECT pg_terminate_backend(@p)", ("p", pid)));
            // The worker retries COMPLETE on a new session, which waits on the lock again: only then is it released.
            var retried = await BlockedCopyAsync(db, run, log, notPid: pid);
            Assert.NotEqual(pid, retried);
            await tx.RollbackAsync();
            await WaitAsync(run, log);
        }
        finally { if (!run.HasExited) run.Kill(entireProcessTree: true); }

        await AssertWrittenOnceAsync(db);
        var text = File.ReadAllText(log);
        Assert.Contains("Database unavailable", text); // the killed session's error, retried
        Assert.Contains("Completed shard", text);
        // How full its batches ran: what says a shard was too small to feed a GPU.
        Assert.Matches(@"Completed shard \d+ attempt \d+: .*; [1-9][0-9]*\.\d rows a model call, long items split to fill 16 of \d+", text); // 16: a CPU worker's
    }

    [Fact]
    public async Task A_session_killed_while_its_commit_waits_leaves_the_outcome_unknown_to_the_worker_and_the_shard_is_still_written_once()
    {
        await using var db = await pg.CreateSchemaAsync();
        // Only the worker's sessions wait for synchronous replication (the test cluster's default is off).
        var workerCs = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Options = "-c synchronous_commit=on" }.ConnectionString;
        var env = await PrepareAsync(db, workerCs);
        var log = Path.Combine(_dir, "run.log");

        await using var blocker = await db.DataSource.OpenConnectionAsync();
        await using var tx = await blocker.BeginTransactionAsync();
        await using (var lockCmd = new NpgsqlCommand("LOCK TABLE segments IN EXCLUSIVE MODE", blocker, tx))
            await lockCmd.ExecuteNonQueryAsync();
        using var run = WorkersProcess.StartLogged(env, log, "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle");
        try
        {
            var pid = await BlockedCopyAsync(db, run, log, notPid: 0);
            Step("blocked " + pid);
            await ExecuteAsync(db, "ALTER SYSTEM SET synchronous_standby_names = 'workers_test_absent_standby'");
            await db.ScalarAsync<bool>("SELECT pg_reload_conf()");
            Step("reloaded");
            await WaitForSyncRepAsync(db);
            Step("probed");
            await tx.RollbackAsync();
            Step("released"); // the COPY goes on; the COMMIT then waits for the standby
            var deadline = Stopwatch.StartNew();
            while (await db.ScalarAsync<string?>("SELECT coalesce(wait_event, '') FROM pg_stat_activity WHERE pid = @p", ("p", pid)) != "SyncRep")
            {
                if (deadline.Elapsed > TimeSpan.FromSeconds(30) || run.HasExited)
                    Assert.Fail($"the worker's COMMIT (pid {pid}) never waited for the standby:\n{await ActivityAsync(db)}\n{string.Join('\n', _steps)}\n{File.ReadAllText(log)}");
                await Task.Delay(50); // polls PostgreSQL for the real worker's COMMIT to wait on the standby
            }
            // Committed locally; the worker is told nothing but a closed connection.
            Assert.True(await db.ScalarAsync<bool>("SELECT pg_terminate_backend(@p)", ("p", pid)));
        }
        finally
        {
            await ExecuteAsync(db, "ALTER SYSTEM RESET synchronous_standby_names");
            await db.ScalarAsync<bool>("SELECT pg_reload_conf()");
        }
        try { await WaitAsync(run, log); }
        finally { if (!run.HasExited) run.Kill(entireProcessTree: true); }

        await AssertWrittenOnceAsync(db);
        var text = File.ReadAllText(log);
        output.WriteLine(string.Join('\n', _steps) + "\n" + text);
        // The worker never saw its COMPLETE succeed: the commit that counted is the one it lost the answer to.
        Assert.Contains("Database unavailable", text); // it retried; the fence refused the retry, and the attempt row showed the first try had committed
        Assert.Contains("Completed shard", text);       // so the worker reports the shard done, once
        Assert.DoesNotContain("Lease lost", text);      // not "nothing was written", which would be false
    }

    /// <summary>Generates the corpus, runs the clean reference, and enqueues the "faulty" corpus; returns the worker's environment.</summary>
    private async Task<Dictionary<string, string?>> PrepareAsync(TestSchema db, string workerConnectionString)
    {
        await Models.CatalogAsync();
        var corpus = Path.Combine(_dir, "corpus");
        var gen = new SpeechCorpusGenerator(Path.Combine(_dir, "espeak"));
        gen.WriteWav(Path.Combine(corpus, "a.wav"), 40, new Random(5));
        gen.WriteWav(Path.Combine(corpus, "b.wav"), 40, new Random(6));
        var env = WorkersProcess.Env(db.ConnectionString, Path.Combine(_dir, "tmp"));
        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "clean")).ExitCode);
        var clean = await WorkersProcess.RunAsync(env, TimeSpan.FromSeconds(90), "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle");
        Assert.True(clean.ExitCode == 0, clean.ToString());
        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "faulty")).ExitCode);
        env["ConnectionStrings__Workers"] = workerConnectionString;
        return env;
    }

    /// <summary>The backend of a worker's COPY into segments that waits on the test's lock.</summary>
    private static async Task<int> BlockedCopyAsync(TestSchema db, Process run, string log, int notPid)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60) && !run.HasExited, "no COPY waited on the lock:\n" + File.ReadAllText(log));
            var pid = await db.ScalarAsync<object>(
                "SELECT coalesce(min(l.pid), 0) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid " +
                "WHERE l.relation = 'segments'::regclass AND NOT l.granted AND a.query LIKE 'COPY segments%' AND l.pid <> @not", ("not", notPid));
            if (pid is int p && p != 0) return p;
            await Task.Delay(50); // polls PostgreSQL for the real worker's COPY to wait on the test's lock
        }
    }

    /// <summary>Waits until a commit asking for synchronous replication actually waits (the reload has reached
    /// the server): a probe commit is seen waiting for the standby, then cancelled out of the wait.</summary>
    private static async Task WaitForSyncRepAsync(TestSchema db)
    {
        await ExecuteAsync(db, "CREATE TABLE sync_probe (x int)");
        var cs = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Options = "-c synchronous_commit=on", Pooling = false }.ConnectionString;
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "synchronous_standby_names never took effect");
            await using var conn = new NpgsqlConnection(cs);
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("INSERT INTO sync_probe VALUES (1)", conn);
            var insert = cmd.ExecuteNonQueryAsync();
            while (!insert.IsCompleted)
            {
                if (await db.ScalarAsync<string?>("SELECT coalesce(wait_event, '') FROM pg_stat_activity WHERE pid = @p", ("p", conn.ProcessID)) == "SyncRep")
                {
                    await db.ScalarAsync<bool>("SELECT pg_cancel_backend(@p)", ("p", conn.ProcessID)); // committed locally; the wait ends
                    try { await insert; } catch (NpgsqlException) { }
                    return;
                }
                await Task.Delay(20); // polls PostgreSQL for the probe commit to wait on the standby
            }
            await insert; // committed without waiting: the reload has not arrived yet
        }
    }

    private readonly List<string> _steps = [];
    private void Step(string what) => _steps.Add($"{TimeProvider.System.GetLocalNow():HH:mm:ss.fff} {what}");

    private static async Task<string> ActivityAsync(TestSchema db)
    {
        await using var cmd = db.DataSource.CreateCommand("SELECT pid, state, wait_event_type, wait_event, left(query, 60), query_start FROM pg_stat_activity WHERE backend_type = 'client backend'");
        await using var r = await cmd.ExecuteReaderAsync();
        var sb = new System.Text.StringBuilder();
        while (await r.ReadAsync()) sb.AppendLine(string.Join(" | ", Enumerable.Range(0, r.FieldCount).Select(i => r.IsDBNull(i) ? "" : r.GetValue(i).ToString())));
        return sb.ToString();
    }

    private static async Task ExecuteAsync(TestSchema db, string sql)
    {
        await using var cmd = db.DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task WaitAsync(Process run, string log)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await run.WaitForExitAsync(timeout.Token);
        Assert.True(run.ExitCode == 0, File.ReadAllText(log));
    }

    private static async Task AssertWrittenOnceAsync(TestSchema db)
    {
        const string Faulty = "SELECT s.id FROM shards s JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'faulty'";
        Assert.Equal("succeeded", await db.ScalarAsync<string>($"SELECT state::text FROM shards WHERE id IN ({Faulty})"));
        Assert.Equal(1L, await db.ScalarAsync<long>($"SELECT count(*) FROM shard_attempts WHERE shard_id IN ({Faulty})"));
        Assert.Equal("succeeded", await db.ScalarAsync<string>($"SELECT outcome FROM shard_attempts WHERE shard_id IN ({Faulty})"));
        var clean = await CorpusSegments.OfAsync(db, "clean");
        var faulty = await CorpusSegments.OfAsync(db, "faulty");
        Assert.True(clean.Count > 10, $"only {clean.Count} segments");
        Assert.Equal(clean, faulty);
        Assert.Equal((long)faulty.Count, await db.ScalarAsync<long>($"SELECT segments::bigint FROM shards WHERE id IN ({Faulty})"));
    }
}
