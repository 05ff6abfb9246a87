using System.Text.Json;

namespace Workers.Cli.Tests;

/// <summary>The embedded default: no connection string, a private cluster under Database:LocalRoot.</summary>
public sealed class LocalClusterCommandTests
{
    [Fact]
    public async Task Without_a_connection_string_the_cli_starts_reuses_and_stops_its_own_cluster()
    {
        var parent = Environment.GetEnvironmentVariable("WORKERS_TEST_PG_ROOT") is { Length: > 0 } p ? p : Path.GetTempPath();
        var root = Path.Combine(parent, "cli-local-" + Guid.NewGuid().ToString("N")[..8]);
        var env = new Dictionary<string, string?> { ["Database__LocalRoot"] = root, ["ConnectionStrings__Workers"] = null };
        var corpus = Directory.CreateTempSubdirectory("workers-local-corpus-").FullName;
        try
        {
            var before = await WorkersProcess.RunAsync(env, "db", "status");
            Assert.Contains("not created", before.StdOut);

            var start = await WorkersProcess.RunAsync(env, "db", "start");
            Assert.True(start.ExitCode == 0, start.ToString());
            Assert.Contains("running  127.0.0.1:", start.StdOut);
            Assert.True(File.Exists(Path.Combine(root, "data", "PG_VERSION")));
            Assert.True(Directory.Exists(Path.Combine(root, "run")));

            TestAudio.WriteWav(Path.Combine(corpus, "x.wav"), 5);
            var enq = await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "local", "--json");
            Assert.True(enq.ExitCode == 0, enq.ToString());
            var status = await WorkersProcess.RunAsync(env, "status", "local", "--json");
            Assert.Equal(1, JsonDocument.Parse(status.StdOut).RootElement.GetProperty("files").GetInt32());
            Assert.DoesNotContain("Password", status.StdOut + status.StdErr);

            Assert.Equal(0, (await WorkersProcess.RunAsync(env, "db", "stop")).ExitCode);
            var stopped = await WorkersProcess.RunAsync(env, "db", "status");
            Assert.Contains("stopped", stopped.StdOut);
            Assert.NotEqual(0, stopped.ExitCode);

            // Reuse: the next command starts the same cluster again and finds the corpus.
            var again = await WorkersProcess.RunAsync(env, "status", "local", "--json");
            Assert.True(again.ExitCode == 0, again.ToString());
        }
        finally
        {
            await WorkersProcess.RunAsync(env, "db", "stop");
            Directory.Delete(corpus, true);
            if (Directory.Exists(root)) Directory.Delete(root, true);
        }
    }
}
