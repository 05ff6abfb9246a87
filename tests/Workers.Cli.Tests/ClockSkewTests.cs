using System.Diagnostics;
using Workers.Audio.Synthesis;
using Workers.Testing;
using Xunit.Abstractions;

namespace Workers.Cli.Tests;

/// <summary>
/// Issue 11: three nodes on one queue whose clocks disagree by minutes (libfaketime: -3 min, true,
/// +3 min), short leases and a rescue every second. Every queue decision runs on the database's
/// clock, so every shard succeeds exactly once, no attempt is lost to a rescue, every node
/// completes shards, and the segments equal a clean run's. Before, the fast node's rescuer took
/// live shards away and the slow node never claimed (to its clock every not_before lay ahead).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ClockSkewTests(PostgresFixture pg, ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-clock-skew-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task Three_nodes_three_minutes_apart_each_shard_succeeds_once_no_rescue_every_node_works()
    {
        Assert.True(File.Exists(Faketime.Library), $"{Faketime.Library} is missing: install Debian's libfaketime (ops/setup.sh does).");
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var corpus = Path.Combine(_dir, "corpus");
        var gen = new SpeechCorpusGenerator(Path.Combine(_dir, "espeak"));
        var rng = new Random(11);
        for (var i = 0; i < 6; i++) gen.WriteWav(Path.Combine(corpus, $"talk{i}.wav"), 60, rng); // 6 one-minute shards
        var temp = Path.Combine(_dir, "tmp");
        Dictionary<string, string?> Env(string node, string? offset = null)
        {
            var env = WorkersProcess.Env(db.ConnectionString, temp,
                ("Fleet__NodeName", node), ("Queue__LeaseSeconds", "6"), ("Queue__HeartbeatSeconds", "2"),
                ("Queue__RescueIntervalSeconds", "1"), ("Queue__RetryBaseSeconds", "1"));
            if (offset is not null) Faketime.Skew(env, offset);
            return env;
        }

        // The reference, on the true clock.
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env("clean"), "enqueue", corpus, "--name", "clean", "--shard-minutes", "1")).ExitCode);
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env("clean"), "run", "--gpus", "none", "--cpu-workers", "2", "--until-idle")).ExitCode);
        var shardsBefore = await db.ScalarAsync<long>("SELECT count(*) FROM shards");

        // Enqueued by the fast node (its own clock would have put every not_before 3 minutes ahead), held paused
        // until all three nodes are up, so that each gets its share.
        await using (var pause = db.DataSource.CreateCommand("INSERT INTO paused_queues (queue, paused_by, paused_at) VALUES ('default', 'test', now())"))
            await pause.ExecuteNonQueryAsync();
        var enq = await WorkersProcess.RunAsync(Env("fast", "+3m"), "enqueue", corpus, "--name", "skewed", "--shard-minutes", "1");
        Assert.True(enq.ExitCode == 0, enq.ToString());
        var nodes = new[] { ("slow", "-3m"), ("true", (string?)null), ("fast", "+3m") };
        var procs = nodes.Select(n => WorkersProcess.StartLogged(Env(n.Item1, n.Item2), Path.Combine(_dir, n.Item1 + ".log"),
            "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle")).ToList();
        try
        {
            var deadline = Stopwatch.StartNew();
            while (await db.ScalarAsync<long>("SELECT count(DISTINCT node) FROM workers WHERE state = 'running' AND node IN ('slow', 'true', 'fast')") < 3)
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(2) && procs.All(p => !p.HasExited), "the three nodes did not all register");
                await Task.Delay(100); // polls the database for three real worker processes to register
            }
            await using (var resume = db.DataSource.CreateCommand("DELETE FROM paused_queues; SELECT pg_notify('workers_shards', '*')"))
                await resume.ExecuteNonQueryAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
            await Task.WhenAll(procs.Select(p => p.WaitForExitAsync(timeout.Token)));
            Assert.All(procs, p => Assert.Equal(0, p.ExitCode));
        }
        finally
        {
            foreach (var p in procs) { if (!p.HasExited) p.Kill(entireProcessTree: true); p.Dispose(); }
        }

        const string Skewed = "JOIN shards s ON s.id = a.shard_id JOIN corpora c ON c.id = s.corpus_id AND c.name = 'skewed'";
        var shards = await db.ScalarAsync<long>("SELECT count(*) FROM shards") - shardsBefore;
        Assert.True(shards >= 6, $"only {shards} shards");
        // Every shard succeeded exactly once, and no attempt was ended by a rescue (or by anything else).
        Assert.Equal(shards, await db.ScalarAsync<long>($"SELECT count(*) FROM shard_attempts a {Skewed} WHERE a.outcome = 'succeeded'"));
        Assert.Equal(shards, await db.ScalarAsync<long>($"SELECT count(DISTINCT a.shard_id) FROM shard_attempts a {Skewed} WHERE a.outcome = 'succeeded'"));
        Assert.Equal(shards, await db.ScalarAsync<long>($"SELECT count(*) FROM shard_attempts a {Skewed}"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE outcome = 'lease_expired'"));
        var perNode = new Dictionary<string, long>();
        foreach (var (node, _) in nodes)
            perNode[node] = await db.ScalarAsync<long>($"SELECT count(*) FROM shard_attempts a {Skewed} WHERE a.outcome = 'succeeded' AND a.node = @n", ("n", node));
        output.WriteLine($"{shards} shards; succeeded per node: {string.Join(", ", perNode.Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.All(perNode, kv => Assert.True(kv.Value > 0, $"node {kv.Key} completed no shard"));

        // The offsets are measured and stored: about -180 s, 0 and +180 s; the skewed nodes warned.
        foreach (var (node, expected) in new[] { ("slow", -180_000.0), ("true", 0.0), ("fast", 180_000.0) })
        {
            var offset = await db.ScalarAsync<double>("SELECT max(clock_offset_ms) FROM workers WHERE node = @n", ("n", node));
            output.WriteLine($"{node}: clock offset {offset / 1000:+0.0;-0.0;0.0} s");
            Assert.InRange(offset, expected - 5_000, expected + 5_000);
        }
        Assert.Contains("off the database's", await File.ReadAllTextAsync(Path.Combine(_dir, "fast.log")));
        Assert.Contains("off the database's", await File.ReadAllTextAsync(Path.Combine(_dir, "slow.log")));
        Assert.DoesNotContain("off the database's", await File.ReadAllTextAsync(Path.Combine(_dir, "true.log")));

        Assert.Equal(await CorpusSegments.OfAsync(db, "clean"), await CorpusSegments.OfAsync(db, "skewed"));
    }
}
