using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Workers.Audio.Synthesis;
using Workers.Testing;
using static Microsoft.Playwright.Assertions;

namespace Workers.Browser.Tests;

/// <summary>
/// Everything one browser test needs, all real: a PostgreSQL schema, an allowed corpus root with a
/// generated speech corpus in it, `workers serve` on a free loopback port, `workers run` on demand,
/// headless chromium on the dashboard, and screenshots under artifacts/browser/TEST/ (kept: the
/// folder is gitignored). Shards get one attempt (Queue:MaxAttempts=1), so a failure is final at once.
/// </summary>
public sealed partial class DashboardScenario : IAsyncDisposable
{
    /// <summary>Long waits for what the page shows: processes start, work, and the page polls every 5 s.</summary>
    public const float WaitMs = 120_000;

    private readonly TestSchema _db;
    private readonly string _dir;
    private readonly Process _serve;
    private readonly Chromium _chromium;
    private int _screenshots;

    private DashboardScenario(TestSchema db, string dir, string artifacts, Dictionary<string, string?> env, Process serve, string baseUrl, Chromium chromium, IPage page)
    {
        _db = db;
        _dir = dir;
        Artifacts = artifacts;
        Env = env;
        _serve = serve;
        BaseUrl = baseUrl;
        _chromium = chromium;
        Page = page;
    }

    public TestSchema Db => _db;
    public IPage Page { get; }
    public string BaseUrl { get; }
    /// <summary>Dashboard:ExportRoot of the dashboard: export jobs write under it.</summary>
    public string Exports => Path.Combine(_dir, "exports");

    /// <summary>Corpus:AllowedRoots:0 of the dashboard; corpora are generated below it.</summary>
    public string Root => Path.Combine(_dir, "root");
    public string Artifacts { get; }
    public IReadOnlyDictionary<string, string?> Env { get; }

    /// <summary>Starts the dashboard and the browser. <paramref name="test"/> names the screenshot folder.</summary>
    public static async Task<DashboardScenario> StartAsync(PostgresFixture pg, string test)
    {
        // Fail on a missing browser before anything slower starts.
        var chromium = await Chromium.LaunchAsync();
        await Models.CatalogAsync();
        var db = await pg.CreateSchemaAsync();
        var dir = Directory.CreateTempSubdirectory("workers-browser-").FullName;
        Directory.CreateDirectory(Path.Combine(dir, "root"));
        Directory.CreateDirectory(Path.Combine(dir, "exports"));
        var artifacts = Path.Combine(Models.RepositoryRoot, "artifacts", "browser", test);
        if (Directory.Exists(artifacts)) Directory.Delete(artifacts, true);
        Directory.CreateDirectory(artifacts);
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Workers"] = db.ConnectionString,
            // Hangfire's tables in this test's own schema: a shared one would let another test's `workers serve` run this test's jobs.
            ["Dashboard__HangfireSchema"] = db.Name + "_hangfire",
            ["Models__Root"] = Models.Root,
            ["Corpus__AllowedRoots__0"] = Path.Combine(dir, "root"),
            ["Dashboard__ExportRoot"] = Path.Combine(dir, "exports"),
            ["Queue__MaxAttempts"] = "1",
            ["Queue__PollSeconds"] = "1",
            ["Fleet__NodeName"] = "browser-node",
            ["Fleet__TempRoot"] = Path.Combine(dir, "tmp"),
        };
        var baseUrl = $"http://127.0.0.1:{FreePort()}";
        var serveLog = Path.Combine(artifacts, "serve.log");
        var serve = WorkersProcess.StartLogged(env, serveLog, "serve", "--urls", baseUrl);
        try
        {
            await WaitUntilServingAsync(serve, baseUrl, serveLog);
            var page = await chromium.NewPageAsync(baseUrl);
            return new DashboardScenario(db, dir, artifacts, env, serve, baseUrl, chromium, page);
        }
        catch
        {
            serve.Kill(entireProcessTree: true);
            await chromium.DisposeAsync();
            await db.DisposeAsync();
            throw;
        }
    }

    /// <summary>A few short WAV files of synthesized speech: 3 x 40 s, two shards at one shard-minute.</summary>
    public string GenerateCorpus(string name, int files = 3, double seconds = 40)
    {
        var folder = Path.Combine(Root, name);
        var gen = new SpeechCorpusGenerator(Path.Combine(_dir, "espeak"));
        var rng = new Random(5);
        for (var i = 0; i < files; i++) gen.WriteWav(Path.Combine(folder, $"talk{i}.wav"), seconds, rng);
        return folder;
    }

    /// <summary>The fault: the corpus folder goes away (an unmounted share), so every shard fails with
    /// CorpusStorageUnavailableException. Dispose the result to bring the folder back.</summary>
    public IDisposable TakeAway(string folder)
    {
        var away = folder + ".away";
        Directory.Move(folder, away);
        return new Restore(() => Directory.Move(away, folder));
    }

    private sealed class Restore(Action undo) : IDisposable
    {
        private Action? _undo = undo;
        public void Dispose() => Interlocked.Exchange(ref _undo, null)?.Invoke();
    }

    /// <summary>Runs `workers`, asserting exit 0.</summary>
    public async Task<WorkersProcess.Result> WorkersAsync(params string[] args)
    {
        var r = await WorkersProcess.RunAsync(Env, args);
        Assert.True(r.ExitCode == 0, $"workers {string.Join(' ', args)}: {r}");
        return r;
    }

    /// <summary>One node with one CPU worker, until no shard is queued or running.</summary>
    public Task<WorkersProcess.Result> RunWorkersAsync() => WorkersAsync("run", "--gpus", "none", "--cpu-workers", "1", "--until-idle");

    public Task<long> ScalarAsync(string sql, params (string Name, object Value)[] args) => _db.ScalarAsync<long>(sql, args);

    /// <summary>A full-page screenshot, numbered in the order taken.</summary>
    public async Task ScreenshotAsync(string step)
    {
        var n = Interlocked.Increment(ref _screenshots);
        await Page.ScreenshotAsync(new() { Path = Path.Combine(Artifacts, $"{n:00}-{step}.png"), FullPage = true });
    }

    /// <summary>Runs a test's steps; when one fails, the page as it was then is kept as a screenshot too.</summary>
    public async Task StepsAsync(Func<Task> steps)
    {
        try { await steps(); }
        catch
        {
            try { await ScreenshotAsync("failure"); } catch (PlaywrightException) { }
            throw;
        }
    }

    /// <summary>Clicks a form's button and asserts its POST answered 303 (an error page says why it did
    /// not). The caller then waits for what the page it is sent back to shows.</summary>
    public async Task SubmitAsync(ILocator button)
    {
        // Not Hangfire's own POST /stats, which its pages send every few seconds to refresh their counters.
        var response = await Page.RunAndWaitForResponseAsync(() => button.ClickAsync(), r => r.Request.Method == "POST" && new Uri(r.Url).AbsolutePath != "/stats");
        if (response.Status != 303)
            Assert.Fail($"POST {response.Url} answered {response.Status}, not 303: {await response.TextAsync()}");
    }

    /// <summary>
    /// Waits until the Hangfire job whose page is open is in <paramref name="state"/> (read from
    /// Hangfire's job table in this test's schema, within <see cref="WaitMs"/>), then reloads the page
    /// (Hangfire's job page does not refresh itself) and expects it to show that state.
    /// </summary>
    public async Task ExpectJobStateAsync(string state)
    {
        var id = long.Parse(new Uri(Page.Url).AbsolutePath.Split('/')[^1], System.Globalization.CultureInfo.InvariantCulture);
        var until = DateTime.UtcNow.AddMilliseconds(WaitMs);
        string current;
        // Generated identifier, not input; the id is a parameter.
        while ((current = await _db.ScalarAsync<string>($"SELECT coalesce((SELECT statename FROM {_db.Name}_hangfire.job WHERE id = @id), '')", ("id", id))) != state)
        {
            if (DateTime.UtcNow > until) Assert.Fail($"Hangfire job {id} is '{current}', not {state}, after {WaitMs} ms");
            await Task.Delay(100);
        }
        // Hangfire's own script reloads the page after one of its buttons, which can abort ours or leave the
        // frame detached for a moment ("Not attached to an active page", seen in a CI-like run): navigate to the
        // job's address afresh, again after a pause if that navigation is cut short too.
        var url = Page.Url;
        for (var tries = 1; ; tries++)
        {
            try
            {
                await Page.GotoAsync(url);
                break;
            }
            catch (PlaywrightException) when (tries < 5) { await Task.Delay(250 * tries); }
        }
        await Expect(Page.Locator("body")).ToContainTextAsync(state);
    }

    /// <summary>The overview row of a corpus (<c>tr data-corpus</c>).</summary>
    public ILocator OverviewRow(string corpus) => Page.Locator($"tr[data-corpus=\"{corpus}\"]");

    /// <summary>The shards cell of an overview row, "queued / running / succeeded / dead / cancelled",
    /// found by its text, so it is found with or without a data-field attribute.</summary>
    public ILocator ShardsCell(string corpus) => OverviewRow(corpus).Locator("td").Filter(new() { HasTextRegex = ShardCounts() });

    /// <summary>Waits (the page refreshes itself) until the shards cell reads these counts.</summary>
    public Task ExpectShardsAsync(string corpus, int queued, int running, int succeeded, int dead, int cancelled) =>
        Expect(ShardsCell(corpus)).ToHaveTextAsync(new Regex($@"^\s*{queued} / {running} / {succeeded} / {dead} / {cancelled}\s*$"), new() { Timeout = WaitMs });

    /// <summary>Marks the page's window; <see cref="AssertNotReloadedAsync"/> then proves it was updated in place.</summary>
    public Task MarkPageAsync() => Page.EvaluateAsync("() => { window.workersBrowserTestMark = 1; }");

    public async Task AssertNotReloadedAsync() =>
        Assert.True(await Page.EvaluateAsync<bool>("() => window.workersBrowserTestMark === 1"), "the page was reloaded; it should refresh itself in place");

    public async ValueTask DisposeAsync()
    {
        try { if (!_serve.HasExited) _serve.Kill(entireProcessTree: true); await _serve.WaitForExitAsync(); }
        finally
        {
            _serve.Dispose();
            await _chromium.DisposeAsync();
            await _db.ScalarAsync<int>($"DROP SCHEMA IF EXISTS {_db.Name}_hangfire CASCADE; SELECT 1"); // generated identifier, not input
            await _db.DisposeAsync();
            Directory.Delete(_dir, true);
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task WaitUntilServingAsync(Process serve, string baseUrl, string log)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (serve.HasExited) throw new InvalidOperationException($"workers serve exited with {serve.ExitCode}:\n{File.ReadAllText(log)}");
            if (sw.Elapsed > TimeSpan.FromMinutes(1)) throw new TimeoutException($"workers serve did not answer on {baseUrl} within a minute:\n{File.ReadAllText(log)}");
            try
            {
                using var r = await http.GetAsync(baseUrl + "/api/corpora");
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(200);
        }
    }

    [GeneratedRegex(@"^\s*\d+ / \d+ / \d+ / \d+ / \d+\s*$")]
    private static partial Regex ShardCounts();
}
