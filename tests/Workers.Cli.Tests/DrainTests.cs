using Workers.Fleet.Supervisor;
using System.Diagnostics;
using Workers.Audio.Synthesis;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>SIGTERM to `workers run`: a running shard finishes within Fleet:DrainSeconds or is given back without spending an attempt.</summary>
[Collection(PostgresCollection.Name)]
public sealed class DrainTests(PostgresFixture pg) : IDisposable
{
    private readonly string _corpus = Directory.CreateTempSubdirectory("workers-drain-").FullName;

    public void Dispose() => Directory.Delete(_corpus, true);

    [Theory]
    [InlineData(0, "queued")]
    [InlineData(300, "succeeded")]
    public async Task Sigterm_drains_a_running_shard(int drainSeconds, string expectedState)
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        new SpeechCorpusGenerator(Path.Combine(_corpus, ".espeak")).WriteWav(Path.Combine(_corpus, "audio", "long.wav"), 1800, new Random(1));
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Workers"] = db.ConnectionString,
            ["Models__Root"] = Models.Root,
            ["Fleet__DrainSeconds"] = drainSeconds.ToString(),
            ["Fleet__TempRoot"] = Path.Combine(_corpus, "tmp"),
        };
        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "enqueue", Path.Combine(_corpus, "audio"), "--name", "drain", "--shard-minutes", "60")).ExitCode);

        using var run = WorkersProcess.Start(env, "run", "--cpu-workers", "1");
        var deadline = Stopwatch.StartNew();
        while (await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'running'") == 0)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(2) && !run.HasExited, "the shard never started running");
            await Task.Delay(50); // polls the database for the real worker process to start the shard
        }
        Assert.Equal(0, Signals.Send(run.Id, Signals.SigTerm)); // SIGTERM to the supervisor; it forwards it to its worker
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await run.WaitForExitAsync(timeout.Token);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(expectedState, await db.ScalarAsync<string>("SELECT state::text FROM shards"));
        Assert.Equal(1, await db.ScalarAsync<int>("SELECT attempt FROM shards"));
        if (expectedState == "queued")
        {
            // Given back: the attempt is not spent (the budget grew by one) and the history says why.
            Assert.Equal(6, await db.ScalarAsync<int>("SELECT max_attempts FROM shards"));
            Assert.Equal("released", await db.ScalarAsync<string>("SELECT outcome FROM shard_attempts"));
        }
        else Assert.Equal("succeeded", await db.ScalarAsync<string>("SELECT outcome FROM shard_attempts"));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_corpus, "tmp"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_second_sigterm_stops_at_once_and_takes_the_workers_down()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        new SpeechCorpusGenerator(Path.Combine(_corpus, ".espeak")).WriteWav(Path.Combine(_corpus, "audio", "long.wav"), 1800, new Random(2));
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Workers"] = db.ConnectionString,
            ["Models__Root"] = Models.Root,
            ["Fleet__DrainSeconds"] = "300",
            ["Fleet__TempRoot"] = Path.Combine(_corpus, "tmp"),
        };
        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "enqueue", Path.Combine(_corpus, "audio"), "--name", "twice", "--shard-minutes", "60")).ExitCode);
        using var run = WorkersProcess.Start(env, "run", "--gpus", "none", "--cpu-workers", "1");
        var deadline = Stopwatch.StartNew();
        while (await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE outcome = 'running'") == 0)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(2) && !run.HasExited, "the shard never started running");
            await Task.Delay(50); // polls the database for the real worker process to start the shard
        }
        var worker = int.Parse((await db.ScalarAsync<string>("SELECT worker FROM shard_attempts")).Split('/')[1]);
        Assert.Equal(0, Signals.Send(run.Id, Signals.SigTerm));
        await Task.Delay(300); // a real supervisor process: let it take the first signal as a drain before the second
        Assert.Equal(0, Signals.Send(run.Id, Signals.SigTerm));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await run.WaitForExitAsync(timeout.Token);
        Assert.Equal(130, run.ExitCode);
        // SIGKILL was sent on the way out; the worker is gone (or a zombie awaiting its reaper) within moments.
        static bool Alive(int pid)
        {
            try { return Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z "); }
            catch (IOException) { return false; }
        }
        var gone = Stopwatch.StartNew();
        while (Alive(worker))
        {
            Assert.True(gone.Elapsed < TimeSpan.FromSeconds(10), "the worker outlived a second signal");
            await Task.Delay(50); // polls /proc for a real process to exit
        }
        // Nothing was completed or released: the lease will expire and the rescuer will re-queue the shard.
        Assert.Equal("running", await db.ScalarAsync<string>("SELECT state::text FROM shards"));
    }

}
