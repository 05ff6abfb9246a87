using System.Diagnostics;
using System.Text.RegularExpressions;
using Workers.Fleet.Supervisor;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>`workers demo` runs the whole job and shows it on the dashboard while it runs (and after, with --keep-serving).</summary>
[Collection(PostgresCollection.Name)]
public sealed partial class DemoCommandTests(PostgresFixture pg) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-demo-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task Demo_processes_a_generated_corpus_and_serves_it_on_the_dashboard()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Workers"] = db.ConnectionString,
            ["Models__Root"] = Models.Root,
            ["Fleet__TempRoot"] = Path.Combine(_dir, "tmp"),
            // Hangfire's tables in this test's own schema (dropped with it below), apart from other tests' dashboards.
            ["Dashboard__HangfireSchema"] = db.Name + "_hangfire",
        };
        var log = Path.Combine(_dir, "demo.log");
        using var demo = WorkersProcess.StartLogged(env, log, "demo", "--minutes", "1", "--folder", Path.Combine(_dir, "corpus"),
            "--cpu-workers", "1", "--dashboard", "http://127.0.0.1:0", "--keep-serving");
        try
        {
            string? url = null;
            var clock = Stopwatch.StartNew();
            while (url is null)
            {
                Assert.False(demo.HasExited, "demo exited early:\n" + Read(log));
                Assert.True(clock.Elapsed < TimeSpan.FromMinutes(4), "the demo never finished:\n" + Read(log));
                if (StillUp().Match(Read(log)) is { Success: true } m) url = m.Groups[1].Value;
                else await Task.Delay(200); // polls a real process's log: the demo prints its dashboard URL when the run is done
            }
            var text = Read(log);
            Assert.Contains("Dashboard: " + url, text); // announced before the run, not only after it
            var name = Regex.Match(text, @"corpus\s+(demo-\S+)").Groups[1].Value;
            Assert.StartsWith("demo-", name);

            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var corpora = await http.GetStringAsync("/api/corpora");
            Assert.Contains($"\"name\":\"{name}\"", corpora);
            Assert.Contains("\"progress\":1", corpora);
            Assert.Contains(name, await http.GetStringAsync("/corpora"));
            Assert.Contains("Succeeded shards", await http.GetStringAsync("/")); // Hangfire's home, with our shard tiles
            // The demo's corpus folder is the enqueue form's allowed root, so more can be enqueued from the browser.
            var enqueue = await http.GetStringAsync("/enqueue");
            Assert.Contains("id=\"enqueue-form\"", enqueue);
            Assert.DoesNotContain("enqueue-off", enqueue);

            // Ctrl+C is SIGINT. A process whose parent ignores SIGINT inherits that (every job a non-interactive shell runs
            // in the background does, e.g. a suite started with `nohup ... &`), and .NET then never sees it: run that way,
            // this test waited a minute for an exit that could not come. Such a demo is stopped as a service manager stops
            // it, with SIGTERM, which it handles the same way (Shutdown).
            Assert.Equal(0, Signals.Send(demo.Id, IgnoresSigInt(demo.Id) ? Signals.SigTerm : Signals.SigInt));
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            try { await demo.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException)
            {
                // Say what it printed, and where its threads were.
                Assert.Fail("the demo did not exit within a minute of the signal; its output:\n" + Read(log) + "\n" + ThreadStacks(demo.Id));
            }
            Assert.Equal(0, demo.ExitCode);
            await db.ScalarAsync<int>($"DROP SCHEMA IF EXISTS {db.Name}_hangfire CASCADE; SELECT 1"); // generated identifier
        }
        finally
        {
            if (!demo.HasExited) demo.Kill(entireProcessTree: true);
        }
    }

    /// <summary>Each thread of process <paramref name="pid"/> (name, state, kernel wait channel) and its child processes, from /proc.</summary>
    private static string ThreadStacks(int pid)
    {
        var lines = new List<string> { $"threads of {pid}:" };
        try
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
                lines.Add($"  {Path.GetFileName(task)} {Proc(task, "comm")} state {StatField(Proc(task, "stat"), 0)} wchan {Proc(task, "wchan")}");
            var parent = pid.ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var proc in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
                if (StatField(Proc(proc, "stat"), 1) == parent)
                    lines.Add($"child {Path.GetFileName(proc)}: {Proc(proc, "cmdline").Replace('\0', ' ')}");
        }
        catch (IOException e)
        {
            lines.Add($"(/proc changed while read: {e.Message})");
        }
        return string.Join('\n', lines);
    }

    /// <summary>Whether process <paramref name="pid"/> ignores SIGINT (bit 2 of SigIgn in /proc/PID/status), as it inherits from a background job.</summary>
    private static bool IgnoresSigInt(int pid) =>
        Proc($"/proc/{pid}", "status").Split('\n').FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal)) is { } line
        && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << (Signals.SigInt - 1))) != 0;

    // A /proc file's text, "?" when it cannot be read (the process or thread is gone).
    private static string Proc(string folder, string file)
    {
        try { return File.ReadAllText(Path.Combine(folder, file)).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "?"; }
    }

    // Field n after the command name in a /proc stat line: 0 the state, 1 the parent's pid.
    private static string StatField(string stat, int n) =>
        stat.LastIndexOf(')') is var i and > 0 && i + 2 < stat.Length && stat[(i + 2)..].Split(' ') is var f && f.Length > n ? f[n] : "?";

    private static string Read(string path)
    {
        using var s = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(s).ReadToEnd();
    }

    [GeneratedRegex(@"Dashboard still up at (http://\S+);")]
    private static partial Regex StillUp();
}
