using Workers.Fleet.Supervisor;
using System.Diagnostics;
using System.Text.Json;
using Workers.Audio.Synthesis;
using Workers.Testing;
using Xunit.Abstractions;

namespace Workers.Cli.Tests;

/// <summary>
/// Two nodes (two supervisors of two CPU workers each) on one corpus; one worker is SIGKILLed in
/// the middle of its shard. Its slot restarts, the shard is rescued after its lease and finished
/// elsewhere, and the exported segments equal a clean run's: nothing lost, nothing twice.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class FleetFaultTests(PostgresFixture pg, ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-fleet-fault-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task A_worker_killed_mid_shard_is_restarted_and_its_shard_rescued_with_results_equal_to_a_clean_run()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var corpus = Path.Combine(_dir, "corpus");
        var gen = new SpeechCorpusGenerator(Path.Combine(_dir, "espeak"));
        var rng = new Random(3);
        for (var i = 0; i < 4; i++) gen.WriteWav(Path.Combine(corpus, $"talk{i}.wav"), 900, rng);
        var temp = Path.Combine(_dir, "tmp");
        Dictionary<string, string?> Env(string node) => new()
        {
            ["ConnectionStrings__Workers"] = db.ConnectionString,
            ["Models__Root"] = Models.Root,
            ["Fleet__NodeName"] = node,
            ["Fleet__TempRoot"] = temp,
            ["Fleet__Restart__BaseDelay"] = "00:00:00.2",
            ["Queue__LeaseSeconds"] = "6",
            ["Queue__HeartbeatSeconds"] = "2",
            ["Queue__RescueIntervalSeconds"] = "1",
            ["Queue__PollSeconds"] = "1",
        };

        // The reference: the same audio, processed without faults.
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env("clean"), "enqueue", corpus, "--name", "clean", "--shard-minutes", "15")).ExitCode);
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env("clean"), "run", "--gpus", "none", "--cpu-workers", "2", "--until-idle")).ExitCode);

        Assert.Equal(0, (await WorkersProcess.RunAsync(Env("a"), "enqueue", corpus, "--name", "faulty", "--shard-minutes", "15")).ExitCode);
        using var nodeA = WorkersProcess.Start(Env("node-a"), "run", "--gpus", "none", "--cpu-workers", "2", "--until-idle");
        using var nodeB = WorkersProcess.Start(Env("node-b"), "run", "--gpus", "none", "--cpu-workers", "2", "--until-idle");

        // Wait until a worker of node-a is in the middle of a shard, then SIGKILL it.
        var deadline = Stopwatch.StartNew();
        string? victim = null;
        while (victim is null)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(2) && !nodeA.HasExited, "no worker of node-a started a shard");
            var running = await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE outcome = 'running' AND node = 'node-a'");
            if (running > 0)
            {
                await Task.Delay(500); // a real worker process: let it get into the shard, not at its first window
                victim = await db.ScalarAsync<string>("SELECT worker FROM shard_attempts WHERE outcome = 'running' AND node = 'node-a' LIMIT 1");
            }
            else await Task.Delay(50); // polls the database for a real worker process to start a shard
        }
        var victimShard = await db.ScalarAsync<long>("SELECT shard_id FROM shard_attempts WHERE worker = @w AND outcome = 'running'", ("w", victim));
        var pid = int.Parse(victim.Split('/')[1]);
        var killedAt = DateTime.UtcNow;
        Assert.Equal(0, Signals.Send(pid, Signals.SigKill));

        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await Task.WhenAll(nodeA.WaitForExitAsync(timeout.Token), nodeB.WaitForExitAsync(timeout.Token));
        Assert.Equal(0, nodeA.ExitCode);
        Assert.Equal(0, nodeB.ExitCode);

        // The killed attempt expired and was rescued; the shard then ran again elsewhere and succeeded once.
        Assert.Equal("lease_expired", await db.ScalarAsync<string>("SELECT outcome FROM shard_attempts WHERE shard_id = @s AND attempt = 1", ("s", victimShard)));
        var rerunAt = await db.ScalarAsync<DateTime>("SELECT started_at FROM shard_attempts WHERE shard_id = @s AND attempt = 2", ("s", victimShard));
        output.WriteLine($"worker {victim} SIGKILLed; its shard {victimShard} running again {(rerunAt - killedAt).TotalSeconds:0.0} s later (lease 6 s, rescue every 1 s)");
        Assert.Equal(0L, await db.ScalarAsync<long>(
            "SELECT count(*) FROM (SELECT shard_id FROM shard_attempts WHERE outcome = 'succeeded' GROUP BY shard_id HAVING count(*) <> 1) x"));
        Assert.Equal(await db.ScalarAsync<long>("SELECT count(*) FROM shards"), await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'succeeded'"));
        // The slot was restarted: node-a ran more than two worker processes.
        Assert.True(await db.ScalarAsync<long>("SELECT count(*) FROM workers WHERE node = 'node-a'") >= 3);

        var clean = await ExportAsync(Env("x"), "clean");
        var faulty = await ExportAsync(Env("x"), "faulty");
        Assert.True(clean.Count > 100, $"only {clean.Count} segments");
        Assert.Equal(clean.Count, faulty.Count);
        foreach (var (a, b) in clean.Zip(faulty))
            Assert.True(a.File == b.File && Math.Abs(a.Start - b.Start) < 1e-3 && Math.Abs(a.End - b.End) < 1e-3, $"{a} vs {b}");
        Assert.Empty(Directory.EnumerateFiles(temp, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_worker_frozen_past_its_lease_discovers_the_loss_when_resumed_and_writes_nothing()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var corpus = Path.Combine(_dir, "corpus");
        new SpeechCorpusGenerator(Path.Combine(_dir, "espeak")).WriteWav(Path.Combine(corpus, "talk.wav"), 1800, new Random(8));
        Dictionary<string, string?> Env(string node) => new()
        {
            ["ConnectionStrings__Workers"] = db.ConnectionString,
            ["Models__Root"] = Models.Root,
            ["Fleet__NodeName"] = node,
            ["Fleet__TempRoot"] = Path.Combine(_dir, "tmp"),
            ["Queue__LeaseSeconds"] = "6",
            ["Queue__HeartbeatSeconds"] = "2",
            ["Queue__RescueIntervalSeconds"] = "1",
            ["Queue__PollSeconds"] = "1",
        };
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env("clean"), "enqueue", corpus, "--name", "clean", "--shard-minutes", "60")).ExitCode);
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env("clean"), "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle")).ExitCode);
        Assert.Equal(0, (await WorkersProcess.RunAsync(Env("a"), "enqueue", corpus, "--name", "frozen", "--shard-minutes", "60")).ExitCode);

        using var nodeA = WorkersProcess.Start(Env("node-a"), "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle");
        var deadline = Stopwatch.StartNew();
        while (await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE outcome = 'running' AND node = 'node-a'") == 0)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(2) && !nodeA.HasExited, "node-a never started the shard");
            await Task.Delay(50); // polls the database for a real worker process to start the shard
        }
        var frozen = await db.ScalarAsync<string>("SELECT worker FROM shard_attempts WHERE outcome = 'running' AND node = 'node-a'");
        var pid = int.Parse(frozen.Split('/')[1]);
        Assert.Equal(0, Signals.Send(pid, Signals.SigStop)); // SIGSTOP: frozen mid-shard, heartbeats stop

        // Another node rescues the shard after the lease and finishes it while the first is frozen.
        using var nodeB = WorkersProcess.Start(Env("node-b"), "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await nodeB.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, nodeB.ExitCode);
        Assert.Equal(0, Signals.Send(pid, Signals.SigCont)); // SIGCONT: it wakes up holding a lease that is long gone
        await nodeA.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, nodeA.ExitCode);

        Assert.Equal("lease_expired", await db.ScalarAsync<string>("SELECT outcome FROM shard_attempts WHERE worker = @w", ("w", frozen)));
        Assert.Equal(1L, await db.ScalarAsync<long>(
            "SELECT count(*) FROM shard_attempts a JOIN shards s ON s.id = a.shard_id JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'frozen' AND a.outcome = 'succeeded'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM workers WHERE id = @w AND shards_completed > 0", ("w", frozen)));
        var clean = await ExportAsync(Env("x"), "clean");
        var after = await ExportAsync(Env("x"), "frozen");
        Assert.True(clean.Count > 50);
        Assert.Equal(clean, after);
    }

    private async Task<List<(string File, double Start, double End)>> ExportAsync(Dictionary<string, string?> env, string name)
    {
        var path = Path.Combine(_dir, name + ".jsonl");
        var r = await WorkersProcess.RunAsync(env, "export", name, "--output", path);
        Assert.True(r.ExitCode == 0, r.ToString());
        return File.ReadLines(path).Select(l => JsonDocument.Parse(l).RootElement)
            .Select(j => (j.GetProperty("file").GetString()!, j.GetProperty("start").GetDouble(), j.GetProperty("end").GetDouble())).ToList();
    }

}
