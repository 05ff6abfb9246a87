using System.Diagnostics;
using System.Text.Json;
using Npgsql;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>A node started while PostgreSQL is down waits for it instead of crash-looping.</summary>
public sealed class DatabaseOutageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-outage-").FullName;
    private readonly string _root = Path.Combine(
        Environment.GetEnvironmentVariable("WORKERS_TEST_PG_ROOT") is { Length: > 0 } p ? p : Path.GetTempPath(), "outage-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        WorkersProcess.RunAsync(new Dictionary<string, string?> { ["Database__LocalRoot"] = _root }, "db", "stop").GetAwaiter().GetResult();
        Directory.Delete(_dir, true);
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    [Fact]
    public async Task Run_started_while_the_database_is_down_waits_and_then_finishes_the_queue()
    {
        await Models.CatalogAsync();
        var local = new Dictionary<string, string?> { ["Database__LocalRoot"] = _root };
        Assert.Equal(0, (await WorkersProcess.RunAsync(local, "db", "start")).ExitCode);
        using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(_root, "cluster.json")));
        var cs = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = state.RootElement.GetProperty("Port").GetInt32(), Username = "workers",
            Password = state.RootElement.GetProperty("Password").GetString(), Database = "workers",
        }.ConnectionString;
        var env = new Dictionary<string, string?> { ["ConnectionStrings__Workers"] = cs, ["Models__Root"] = Models.Root, ["Queue__PollSeconds"] = "1" };
        TestAudio.WriteWav(Path.Combine(_dir, "audio", "a.wav"), 20);
        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "enqueue", Path.Combine(_dir, "audio"), "--name", "outage")).ExitCode);
        Assert.Equal(0, (await WorkersProcess.RunAsync(local, "db", "stop")).ExitCode);

        var log = Path.Combine(_dir, "run.log");
        using var run = WorkersProcess.StartLogged(env, log, "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle");
        var deadline = Stopwatch.StartNew();
        while (!File.Exists(log) || !File.ReadAllText(log).Contains("Database unavailable"))
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(1) && !run.HasExited, "run did not wait for the database:\n" + (File.Exists(log) ? File.ReadAllText(log) : ""));
            await Task.Delay(100); // polls a real worker process's log: what it prints is all it tells the outside while the database is down
        }
        Assert.Equal(0, (await WorkersProcess.RunAsync(local, "db", "start")).ExitCode);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await run.WaitForExitAsync(timeout.Token);
        Assert.True(run.ExitCode == 0, File.ReadAllText(log));
        var status = await WorkersProcess.RunAsync(env, "status", "outage", "--json");
        Assert.Equal(1, JsonDocument.Parse(status.StdOut).RootElement.GetProperty("shards").GetProperty("succeeded").GetInt32());
    }
}
