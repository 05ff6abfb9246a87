using Workers.Core.Signals;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Dashboard.Security;
using Workers.Dashboard.Tests.Pages;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Enqueue;

/// <summary>The enqueue form and POST /api/enqueue over real folders and a real PostgreSQL.</summary>
[Collection(PostgresCollection.Name)]
public sealed partial class EnqueueTests(PostgresFixture pg) : IDisposable
{
    private readonly string _base = Directory.CreateTempSubdirectory("workers-dash-enqueue-").FullName;
    private string Root => Path.Combine(_base, "corpora");
    private string Outside => Path.Combine(_base, "secret");

    public void Dispose() => Directory.Delete(_base, true);

    /// <summary>corpora/set: 3 WAVs (12.5 s, 30 s at 8 kHz, 150 s), a broken mp3 and a text file; secret/: one WAV.</summary>
    private CorpusOptions MakeFolders()
    {
        Wav(Path.Combine(Root, "set", "a", "short one.wav"), 12.5);
        Wav(Path.Combine(Root, "set", "a", "ünïcode.WAV"), 30, 8000);
        Wav(Path.Combine(Root, "set", "long.wav"), 150);
        Directory.CreateDirectory(Path.Combine(Root, "set", "b"));
        File.WriteAllText(Path.Combine(Root, "set", "b", "broken.mp3"), "this is not audio");
        File.WriteAllText(Path.Combine(Root, "set", "notes.txt"), "ignored");
        Wav(Path.Combine(Outside, "deep", "x.wav"), 5);
        return new CorpusOptions { AllowedRoots = [Root] };
    }

    private static void Wav(string path, double seconds, int rate = 16000)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Workers.Audio.Pcm16Wav.Write(path, rate, (int)(seconds * rate), i => (short)(3000 * Math.Sin(2 * Math.PI * 220 * i / rate)));
    }

    private static object Body(string path, string? name = null, bool dryRun = true, double shardMinutes = 1) =>
        new { path, name, shard_minutes = shardMinutes, pipeline = "vad", queue = "default", priority = 2, dry_run = dryRun };

    private static async Task<(HttpStatusCode Status, JsonElement Json)> Read(HttpResponseMessage r)
    {
        using (r) return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static async Task<long> Written(TestSchema db) =>
        await db.ScalarAsync<long>("SELECT (SELECT count(*) FROM corpora) + (SELECT count(*) FROM files) + (SELECT count(*) FROM shards) + (SELECT count(*) FROM audit_log)");

    [Fact]
    public async Task Path_escapes_are_refused_with_a_message_and_nothing_is_written()
    {
        var corpus = MakeFolders();
        Directory.CreateSymbolicLink(Path.Combine(Root, "escape"), Outside);                    // the folder itself leads out
        Directory.CreateSymbolicLink(Path.Combine(Root, "set", "up"), "../../secret");         // a parent component leads out
        File.WriteAllText(Path.Combine(Root, "file.wav"), "x");
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus);

        var cases = new (string Path, string Message)[]
        {
            ("../secret", "'..'"),
            (Path.Combine(Root, "..", "secret"), "'..'"),
            ("set/../../secret", "'..'"),
            (Outside, "outside the allowed corpus roots"),
            (Path.Combine(Outside, "deep"), "outside the allowed corpus roots"),
            ("/", "outside the allowed corpus roots"),
            ("escape", "through the symlink"),
            (Path.Combine(Root, "escape", "deep"), "through the symlink"),
            ("set/up/deep", "through the symlink"),
            ("nope", "does not exist"),
            ("file.wav", "is a file, not a folder"),
            ("", "No folder given"),
        };
        foreach (var dryRun in new[] { true, false })
            foreach (var (path, message) in cases)
            {
                var (status, json) = await Read(await d.PostJsonAsync("/api/enqueue", Body(path, "x", dryRun)));
                Assert.True(status == HttpStatusCode.BadRequest, $"{path}: {(int)status} {json}");
                Assert.Contains(message, json.GetProperty("error").GetString());
            }
        Assert.Equal(0L, await Written(db));

        // The form answers the same refusal as its page: the error, the form re-filled, 400.
        using var form = await d.PostFormAsync("/enqueue", [new("path", "escape"), new("name", "kept <name>")]);
        var html = await form.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, form.StatusCode);
        Assert.Matches("<p id=\"enqueue-error\"[^>]*>[^<]*through the symlink", html);
        Assert.Contains("name=\"path\" value=\"escape\"", html);
        Assert.Contains("name=\"name\" value=\"kept &lt;name&gt;\"", html);
        Assert.Equal(0L, await Written(db));
    }

    [Fact]
    public async Task The_root_itself_and_a_subfolder_are_accepted()
    {
        var corpus = MakeFolders();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus);

        var (status, root) = await Read(await d.PostJsonAsync("/api/enqueue", Body(Root)));
        Assert.True(status == HttpStatusCode.OK, root.ToString());
        Assert.Equal(Root, root.GetProperty("root").GetString());
        Assert.Equal("corpora", root.GetProperty("name").GetString()); // the folder's name by default
        Assert.Equal(3, root.GetProperty("files").GetInt32());

        var (status2, sub) = await Read(await d.PostJsonAsync("/api/enqueue", Body("set/a")));
        Assert.True(status2 == HttpStatusCode.OK, sub.ToString());
        Assert.Equal(Path.Combine(Root, "set", "a"), sub.GetProperty("root").GetString());
        Assert.Equal(2, sub.GetProperty("files").GetInt32());
        Assert.Equal(42.5, sub.GetProperty("audio_seconds").GetDouble(), 3);
    }

    [Fact]
    public async Task A_preview_writes_nothing_and_matches_the_cli_dry_run_then_confirm_creates_the_corpus()
    {
        var corpus = MakeFolders();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus);

        var (status, preview) = await Read(await d.PostJsonAsync("/api/enqueue", Body("set", "real")));
        Assert.True(status == HttpStatusCode.OK, preview.ToString());
        Assert.Equal(0L, await Written(db));
        Assert.True(preview.GetProperty("dry_run").GetBoolean());
        Assert.Equal(JsonValueKind.Null, preview.GetProperty("estimated_seconds").ValueKind); // nothing finished: no rate yet
        Assert.Equal(0, preview.GetProperty("fleet_audio_hours_per_minute").GetDouble());

        var cli = await RunCliAsync(db, "enqueue", Path.Combine(Root, "set"), "--name", "real", "--shard-minutes", "1", "--dry-run", "--json");
        Assert.Equal(cli.GetProperty("files").GetInt32(), preview.GetProperty("files").GetInt32());
        Assert.Equal(cli.GetProperty("audio_seconds").GetDouble(), preview.GetProperty("audio_seconds").GetDouble());
        Assert.Equal(cli.GetProperty("audio_hours").GetDouble(), preview.GetProperty("audio_hours").GetDouble());
        Assert.Equal(cli.GetProperty("shards").GetInt32(), preview.GetProperty("shards").GetInt32());
        Assert.Equal(cli.GetProperty("source").GetString(), preview.GetProperty("root").GetString());
        // ffprobe's messages carry a pointer ("[mp3 @ 0x55ac...]") that differs per process.
        static string Same(string? error) => Regex.Replace(error ?? "", "0x[0-9a-f]+", "0x");
        Assert.Equal(cli.GetProperty("failed_files").EnumerateArray().Select(f => (f.GetProperty("file").GetString(), Same(f.GetProperty("error").GetString()))),
            preview.GetProperty("failures").EnumerateArray().Select(f => (f.GetProperty("path").GetString(), Same(f.GetProperty("error").GetString()))));
        Assert.Equal(3, preview.GetProperty("files").GetInt32());
        Assert.Equal(1, preview.GetProperty("failed_files").GetInt32());
        Assert.Equal(192.5, preview.GetProperty("audio_seconds").GetDouble(), 3);
        Assert.Equal(0L, await Written(db));

        // A file added after the preview is picked up: confirm scans again.
        Wav(Path.Combine(Root, "set", "late.wav"), 10);
        var (created, done) = await Read(await d.PostJsonAsync("/api/enqueue", Body("set", "real", dryRun: false)));
        Assert.True(created == HttpStatusCode.Created, done.ToString());
        Assert.False(done.GetProperty("dry_run").GetBoolean());
        var id = done.GetProperty("corpus_id").GetInt64();
        Assert.Equal(4, done.GetProperty("files").GetInt32());
        Assert.Equal(id, await db.ScalarAsync<long>("SELECT id FROM corpora WHERE name = 'real' AND root_dir = @r AND queue = 'default' AND priority = 2 AND files = 4 AND failed_files = 1",
            ("r", Path.Combine(Root, "set"))));
        Assert.Equal((long)done.GetProperty("shards").GetInt32(), await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE corpus_id = @c AND state = 'queued' AND max_attempts = 3", ("c", id)));
        Assert.Equal(202.5, await db.ScalarAsync<double>("SELECT sum(audio_seconds) FROM shards WHERE corpus_id = @c", ("c", id)), 3);

        var entry = Assert.Single((await d.GetJsonAsync("/api/audit")).GetProperty("entries").EnumerateArray());
        Assert.Equal("corpus.enqueue", entry.GetProperty("action").GetString());
        Assert.Equal("corpus:real", entry.GetProperty("target").GetString());
        Assert.Equal("local", entry.GetProperty("actor").GetString());
        Assert.Equal(done.GetProperty("shards").GetInt32(), entry.GetProperty("rows_affected").GetInt32());
        Assert.Contains(Path.Combine(Root, "set"), entry.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task The_estimate_is_the_audio_over_the_fleets_recent_rate()
    {
        var corpus = MakeFolders();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus);
        // 20 shards of 60 s finished within the 10-minute window: 1,200 s / 600 s = 2 audio seconds per second.
        await d.SeedCorpusAsync(20, "done");
        await db.ScalarAsync<int>("WITH x AS (UPDATE shards SET state = 'succeeded', finished_at = @now RETURNING 1) SELECT count(*)::int FROM x",
            ("now", d.Time.GetUtcNow().UtcDateTime));

        var (status, preview) = await Read(await d.PostJsonAsync("/api/enqueue", Body("set")));
        Assert.True(status == HttpStatusCode.OK, preview.ToString());
        Assert.Equal(2 * 60.0 / 3600, preview.GetProperty("fleet_audio_hours_per_minute").GetDouble(), 9);
        Assert.Equal(192.5 / 2, preview.GetProperty("estimated_seconds").GetDouble(), 6);
    }

    [Fact]
    public async Task A_taken_name_is_409_on_preview_and_on_confirm()
    {
        var corpus = MakeFolders();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus);
        await d.SeedCorpusAsync(1, "taken");
        var before = await Written(db);

        foreach (var dryRun in new[] { true, false })
        {
            var (status, json) = await Read(await d.PostJsonAsync("/api/enqueue", Body("set", "taken", dryRun)));
            Assert.Equal(HttpStatusCode.Conflict, status);
            Assert.Contains("already exists", json.GetProperty("error").GetString());
        }
        using var form = await d.PostFormAsync("/enqueue", [new("path", "set"), new("name", "taken"), new("confirm", "1")]);
        Assert.Equal(HttpStatusCode.Conflict, form.StatusCode);
        Assert.Contains("id=\"enqueue-error\"", await form.Content.ReadAsStringAsync());
        Assert.Equal(before, await Written(db));
    }

    [Fact]
    public async Task Bad_settings_are_400_with_what_to_fix()
    {
        var corpus = MakeFolders();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus);
        var (s1, j1) = await Read(await d.PostJsonAsync("/api/enqueue", new { path = "set", shard_minutes = 0, queue = "no spaces", pipeline = "asr", dry_run = true }));
        Assert.Equal(HttpStatusCode.BadRequest, s1);
        var error = j1.GetProperty("error").GetString()!;
        Assert.Contains("shard_minutes must be between 0 and 1440", error);
        Assert.Contains("queue 'no spaces'", error);
        Assert.Contains("pipeline 'asr' is not configured", error);
        var (s2, j2) = await Read(await d.PostJsonAsync("/api/enqueue", new { path = 5 }));
        Assert.Equal(HttpStatusCode.BadRequest, s2);
        Assert.Contains("\"path\" must be a string", j2.GetProperty("error").GetString());
        using var form = await d.PostFormAsync("/enqueue", [new("path", "set"), new("shard_minutes", "half an hour")]);
        Assert.Equal(HttpStatusCode.BadRequest, form.StatusCode);
        Assert.Contains("shard_minutes must be a number", await form.Content.ReadAsStringAsync());
        Assert.Equal(0L, await Written(db));
    }

    [Theory]
    [InlineData("..", "q")]
    [InlineData("team%2Fb", "q")]
    [InlineData("evil\u202egnp", "q")]
    [InlineData("ok", "q1\n")]
    public async Task Names_that_do_not_round_trip_are_refused_as_the_cli_refuses_them(string name, string queue)
    {
        // Issue 13: the same rule (Names) as `workers enqueue`; before, "..", "team%2Fb" and "q1\n" were accepted.
        var corpus = MakeFolders();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus);
        var (status, json) = await Read(await d.PostJsonAsync("/api/enqueue", new { path = "set", name, queue, dry_run = false }));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        var error = json.GetProperty("error").GetString()!;
        Assert.Contains(name == "ok" ? "queue '" : "name '", error);
        Assert.DoesNotContain('\u202e', error);
        Assert.Equal(0L, await Written(db));
    }

    [Fact]
    public async Task A_readonly_user_cannot_enqueue_and_a_post_without_antiforgery_is_refused()
    {
        var corpus = MakeFolders();
        await using var db = await pg.CreateSchemaAsync();
        var options = new DashboardOptions
        {
            Users = [new DashboardUser { Name = "rita", Role = DashboardRoles.ReadOnly, PasswordHash = PasswordHash.Create("battery staple", 10_000).ToString() }],
        };
        await using var d = await TestDashboard.StartAsync(db, options, corpus: corpus);
        var rita = ("rita", "battery staple");

        using (var page = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/enqueue", "10.0.0.9", rita)))
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        using (var r = await d.PostJsonAsync("/api/enqueue", Body("set", "x", dryRun: false), "10.0.0.9", rita))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
            Assert.Contains("readonly", await r.Content.ReadAsStringAsync());
        }

        var bare = TestDashboard.Request(HttpMethod.Post, "/api/enqueue");
        bare.Content = System.Net.Http.Json.JsonContent.Create(Body("set", "x", dryRun: false));
        using (var r = await d.Client.SendAsync(bare)) Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var form = TestDashboard.Request(HttpMethod.Post, "/enqueue");
        form.Content = new FormUrlEncodedContent([new("path", "set"), new("name", "x"), new("confirm", "1")]);
        using (var r = await d.Client.SendAsync(form)) Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal(0L, await Written(db));
    }

    [Fact]
    public async Task Without_allowed_roots_the_page_says_how_to_turn_it_on_and_posts_are_403()
    {
        MakeFolders();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);

        using (var page = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/enqueue")))
        {
            var html = await page.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Contains("Corpus__AllowedRoots__0=/data/corpora", html);
            Assert.DoesNotContain("id=\"enqueue-form\"", html);
        }
        var (status, json) = await Read(await d.PostJsonAsync("/api/enqueue", Body(Path.Combine(Root, "set"))));
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("Corpus:AllowedRoots", json.GetProperty("error").GetString());
        using (var form = await d.PostFormAsync("/enqueue", [new("path", Path.Combine(Root, "set")), new("confirm", "1")]))
            Assert.Equal(HttpStatusCode.Forbidden, form.StatusCode);
        Assert.Equal(0L, await Written(db));
    }

    [Fact]
    public async Task The_form_previews_then_its_confirm_starts_a_hangfire_job_that_writes_the_corpus()
    {
        var corpus = MakeFolders();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus);

        using (var page = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/enqueue")))
        {
            var html = await page.Content.ReadAsStringAsync();
            Assert.Contains("<form id=\"enqueue-form\" method=\"post\" action=\"/enqueue\">", html);
            foreach (var name in new[] { "path", "name", "shard_minutes", "pipeline", "queue", "priority" }) Assert.Contains($"name=\"{name}\"", html);
            Assert.Contains("<button id=\"preview\">preview</button>", html);
        }

        using var preview = await d.PostFormAsync("/enqueue",
            [new("path", "set"), new("name", "tone & co"), new("shard_minutes", "1"), new("pipeline", "vad"), new("queue", "q1"), new("priority", "3")]);
        var body = await preview.Content.ReadAsStringAsync();
        Assert.True(preview.StatusCode == HttpStatusCode.OK, body);
        Assert.Contains("<table id=\"preview-result\">", body);
        Assert.Matches("data-field=\"files\">3<", body);
        Assert.Matches("data-field=\"failed-files\">1<", body);
        Assert.Contains("no rate yet", body);
        Assert.Contains("b/broken.mp3", body);
        Assert.Contains("<button id=\"confirm\">enqueue</button>", body);
        Assert.Equal(0L, await Written(db));

        // Post exactly what the confirm form carries.
        var confirmForm = body[body.IndexOf("id=\"confirm-form\"", StringComparison.Ordinal)..];
        var fields = HiddenField().Matches(confirmForm)
            .Select(m => KeyValuePair.Create(WebUtility.HtmlDecode(m.Groups[1].Value), WebUtility.HtmlDecode(m.Groups[2].Value)))
            .Where(f => f.Key != "__RequestVerificationToken").ToList();
        Assert.Contains(KeyValuePair.Create("confirm", "1"), fields);
        Assert.Contains(KeyValuePair.Create("name", "tone & co"), fields);
        using var confirm = await d.PostFormAsync("/enqueue", fields);
        Assert.True(confirm.StatusCode == HttpStatusCode.SeeOther, await confirm.Content.ReadAsStringAsync());
        var location = confirm.Headers.Location!.OriginalString;
        Assert.StartsWith("/jobs/details/", location);
        var jobId = Uri.UnescapeDataString(location["/jobs/details/".Length..]);
        var succeeded = await d.WaitForJobAsync(jobId, "Succeeded");
        Assert.Contains("tone & co", succeeded["Result"]);

        // Hangfire's job page, and our Enqueue page listing the job with its last progress.
        Assert.Contains("Enqueue corpus tone &amp; co", await d.GetHtmlAsync(location));
        var enqueuePage = await d.GetHtmlAsync("/enqueue");
        Assert.Matches($"<tr data-job=\"{jobId}\">.*Succeeded.*tone &amp; co.*done: corpus", enqueuePage);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora WHERE name = 'tone & co' AND queue = 'q1' AND priority = 3 AND shard_seconds = 60"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log WHERE action = 'corpus.enqueue' AND target = 'corpus:tone & co'"));
    }

    [Fact]
    public async Task A_scan_past_Corpus_ScanTimeoutSeconds_stops_with_a_message_and_writes_nothing()
    {
        var corpus = MakeFolders();
        corpus.ScanTimeoutSeconds = 1;
        await using var db = await pg.CreateSchemaAsync();
        // A probe that never finishes (as ffprobe over hundreds of thousands of files seems to): only the timeout ends it.
        var probe = new NeverDone();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus, services: s => s.AddSingleton<IDurationProbe>(probe));

        var request = d.PostJsonAsync("/api/enqueue", Body("set", "slow", dryRun: false));
        await probe.Entered.WaitAsync(); // the scan is probing, its time limit running on the dashboard's clock
        d.Time.Advance(TimeSpan.FromSeconds(1));
        var (status, json) = await Read(await request);
        Assert.True(status == HttpStatusCode.BadRequest, $"{(int)status} {json}");
        var error = json.GetProperty("error").GetString()!;
        Assert.Contains("took longer than 1 s (Corpus:ScanTimeoutSeconds)", error);
        Assert.Contains("workers enqueue", error);
        Assert.Equal(0L, await Written(db));
    }

    [Fact]
    public async Task The_scan_limit_runs_on_the_dashboards_clock_so_an_hour_passes_when_the_clock_says_so()
    {
        var corpus = MakeFolders();
        corpus.ScanTimeoutSeconds = 3600;
        await using var db = await pg.CreateSchemaAsync();
        var probe = new NeverDone();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus, services: s => s.AddSingleton<IDurationProbe>(probe));

        var request = d.PostJsonAsync("/api/enqueue", Body("set", "slow", dryRun: false));
        await probe.Entered.WaitAsync();
        d.Time.Advance(TimeSpan.FromSeconds(3599));
        Assert.False(request.IsCompleted); // not yet: a second of the hour is left
        d.Time.Advance(TimeSpan.FromSeconds(1));
        // On the wall clock this would take an hour; on the dashboard's TimeProvider it is over now.
        var (status, json) = await Read(await request.WaitAsync(TestSignal<bool>.DefaultTimeout));
        Assert.True(status == HttpStatusCode.BadRequest, $"{(int)status} {json}");
        Assert.Contains("took longer than 3600 s (Corpus:ScanTimeoutSeconds)", json.GetProperty("error").GetString());
    }

    /// <summary>Signals when the scan reaches it, then waits until the scan's token is cancelled.</summary>
    private sealed class NeverDone : IDurationProbe
    {
        public TestSignal Entered { get; } = new("probe entered");

        public async Task<IReadOnlyList<(double? Duration, string? Error)>> ProbeManyAsync(IReadOnlyList<string> fullPaths, CancellationToken ct)
        {
            Entered.Signal();
            await Task.Delay(Timeout.Infinite, ct); // not a sleep: ends only when the scan is cancelled
            throw new InvalidOperationException("unreachable");
        }
    }

    /// <summary>`workers enqueue ... --json` from the built executable (referenced by this project).</summary>
    private static async Task<JsonElement> RunCliAsync(TestSchema db, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = AppContext.BaseDirectory };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "workers.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["ConnectionStrings__Workers"] = db.ConnectionString;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await p.WaitForExitAsync(limit.Token);
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {await stdout} {await stderr}");
        return JsonDocument.Parse(await stdout).RootElement.Clone();
    }

    [GeneratedRegex("<input type=\"hidden\" name=\"([^\"]*)\" value=\"([^\"]*)\">")]
    private static partial Regex HiddenField();
}
