using System.Text.Json;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>A slot whose worker crashes at start-up every time is given up and reported, not restarted forever.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CrashLoopTests(PostgresFixture pg) : IDisposable
{
    private readonly string _empty = Directory.CreateTempSubdirectory("workers-no-models-").FullName;

    public void Dispose() => Directory.Delete(_empty, true);

    [Fact]
    public async Task A_worker_that_always_crashes_at_start_up_is_marked_crash_looping()
    {
        await using var db = await pg.CreateSchemaAsync();
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Workers"] = db.ConnectionString,
            ["Models__Root"] = _empty, // no models.json: every worker exits at start-up
            ["Fleet__NodeName"] = "node-crash",
            ["Fleet__Restart__BaseDelay"] = "00:00:00.05",
            ["Fleet__Restart__MaxCrashes"] = "3",
        };
        var run = await WorkersProcess.RunAsync(env, "run", "--gpus", "none", "--cpu-workers", "1");
        Assert.Equal(1, run.ExitCode);
        Assert.Equal(3, run.StdErr.Split('\n').Count(l => l.Contains("Slot 0: worker process") && l.Contains("started")));
        Assert.Contains("crash-looping", run.StdErr);

        var fleet = JsonDocument.Parse((await WorkersProcess.RunAsync(env, "status", "--fleet", "--json")).StdOut).RootElement;
        var slot = Assert.Single(fleet.GetProperty("workers").EnumerateArray());
        Assert.Equal("crash_looping", slot.GetProperty("state").GetString());
        Assert.Equal("node-crash", slot.GetProperty("node").GetString());
    }
}
