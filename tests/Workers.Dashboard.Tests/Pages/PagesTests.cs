using System.Net;
using System.Text.RegularExpressions;
using Workers.Postgres.Fleet;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Pages;

/// <summary>The server-rendered pages (issue 5): nav, encoding, shard detail, failures, fleet, audit, overview.</summary>
[Collection(PostgresCollection.Name)]
public sealed partial class PagesTests(PostgresFixture pg)
{
    private const string Hostile = "<script>alert(1)</script>";

    /// <summary>Claims one shard of the queue and fails it for good (budget 1): a dead shard with one failed attempt.</summary>
    private static async Task<long> KillOneAsync(TestDashboard d, ShardQueue queue, WorkerIdentity w, string queueName = "default")
    {
        var s = Assert.Single(await queue.ClaimAsync(w, [queueName]));
        await d.Db.ScalarAsync<int>("WITH x AS (UPDATE shards SET max_attempts = attempt WHERE id = @id RETURNING 1) SELECT count(*)::int FROM x", ("id", s.Id));
        await queue.FailAsync(s, w, new ShardFailure("DecoderException", $"bad header {Hostile}", "at Decoder.Read()\n   at Shard.Run()", "log: opened file"));
        Assert.Equal("dead", await d.Db.ScalarAsync<string>("SELECT state::text FROM shards WHERE id = @id", ("id", s.Id)));
        return s.Id;
    }

    /// <summary>The file of a one-file shard (SeedCorpusAsync puts one file in each).</summary>
    private static Task<int> FileOfAsync(TestDashboard d, long shard) =>
        d.Db.ScalarAsync<int>("SELECT file_index FROM shard_items WHERE shard_id = @id", ("id", shard));

    [Fact]
    public async Task Every_page_answers_200_with_the_nav_bar()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(2);
        var id = await db.ScalarAsync<long>("SELECT min(id) FROM shards");
        foreach (var url in new[] { "/corpora", "/shards", "/failures", "/fleet", "/audit", $"/shards/{id}" })
            PageAssert.HasNav(await d.GetHtmlAsync(url));
        PageAssert.HasNav(await d.GetHtmlAsync("/shards/987654", HttpStatusCode.NotFound));
    }

    [Fact]
    public async Task Hostile_corpus_file_and_error_text_is_encoded_on_every_page()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        // The corpus name is also the folder of its file paths, so the paths carry the script too.
        await d.SeedCorpusAsync(3, Hostile, queue: Hostile);
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var w = new WorkerIdentity(Hostile, Hostile, "0", Hostile);
        var dead = await KillOneAsync(d, queue, w, Hostile);
        var done = Assert.Single(await queue.ClaimAsync(w, [Hostile]));
        var file = await FileOfAsync(d, done.Id);
        Assert.True(await queue.CompleteAsync(done, w, [new SegmentRow(file, 1, 2)], [new FileFailureRow(file, 0, 60, "decode failed " + Hostile)]));
        await new WorkerRegistry(db.DataSource, d.Time).RegisterAsync(new WorkerRegistration(Hostile, Hostile, 1, 0, "0", "uuid", Hostile, Hostile, 1, "v", [Hostile]));
        // A '/' in a name cannot travel in a route segment, so the audit row is written directly.
        await db.ScalarAsync<int>("WITH x AS (INSERT INTO audit_log (at, actor, action, target, rows_affected, detail) VALUES (now(), @h, 'corpus.cancel', @h, 0, @h) RETURNING 1) SELECT count(*)::int FROM x", ("h", Hostile));

        var enc = "&lt;script&gt;alert(1)&lt;/script&gt;";
        foreach (var url in new[] { "/corpora", "/shards", "/failures", $"/failures?corpus={Uri.EscapeDataString(Hostile)}", "/fleet", "/audit", $"/shards/{dead}", $"/shards/{done.Id}" })
        {
            var html = await d.GetHtmlAsync(url);
            Assert.DoesNotContain(Hostile, html);
            Assert.Contains(enc, html);
        }
    }

    [Fact]
    public async Task A_shard_page_shows_each_attempt_with_error_type_message_stack_and_log_and_a_rerun_button()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(2, "talks");
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var dead = await KillOneAsync(d, queue, new WorkerIdentity("node-a/1/0", "node-a", "0", "CUDAExecutionProvider"));

        var html = await d.GetHtmlAsync($"/shards/{dead}");
        Assert.Contains("<table id=\"attempts\">", html);
        Assert.Contains("DecoderException", html);
        Assert.Contains("bad header &lt;script&gt;", html);
        Assert.Matches("<details><summary>stack</summary><pre>at Decoder.Read\\(\\)\n   at Shard.Run\\(\\)</pre></details>", html);
        Assert.Contains("<details><summary>log</summary><pre>log: opened file</pre></details>", html);
        Assert.Contains("CUDAExecutionProvider", html);
        Assert.Contains("<table id=\"items\">", html);
        Assert.Contains("talks/f000000.wav", html);
        Assert.Contains("<table id=\"file-failures\">", html);
        Assert.Contains("id=\"segment-count\">0 segments", html);
        Assert.Contains($"action=\"/api/shards/{dead}/rerun\"", html);

        // A queued shard has nothing to re-run.
        var queued = await db.ScalarAsync<long>("SELECT id FROM shards WHERE state = 'queued'");
        Assert.DoesNotContain("/rerun\"", await d.GetHtmlAsync($"/shards/{queued}"));

        var missing = await d.GetHtmlAsync("/shards/987654", HttpStatusCode.NotFound);
        Assert.Contains("There is no shard 987654", missing);
        Assert.Contains($"<a href=\"/shards/{dead}\">", await d.GetHtmlAsync("/shards"));
    }

    [Fact]
    public async Task A_shard_page_lists_a_bounded_number_of_segments_with_the_exact_count()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(1);
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var w = new WorkerIdentity("w", "n");
        var s = Assert.Single(await queue.ClaimAsync(w, ["default"]));
        var file = await FileOfAsync(d, s.Id);
        var segments = Enumerable.Range(0, 250).Select(i => new SegmentRow(file, i * 0.2, i * 0.2 + 0.1)).ToList();
        Assert.True(await queue.CompleteAsync(s, w, segments));

        var html = await d.GetHtmlAsync($"/shards/{s.Id}");
        Assert.Contains("250 segments written, the first 100 listed", html);
        var table = html[html.IndexOf("<table id=\"segments\">", StringComparison.Ordinal)..];
        Assert.Equal(101, Regex.Matches(table[..table.IndexOf("</table>", StringComparison.Ordinal)], "<tr>").Count);
    }

    [Fact]
    public async Task Failures_filters_dead_shards_and_the_rerun_all_form_carries_the_filter()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(3, "a", queue: "qa");
        await d.SeedCorpusAsync(3, "b", queue: "qb");
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var inA = await KillOneAsync(d, queue, new WorkerIdentity("node-1/1/0", "node-1"), "qa");
        var inB = await KillOneAsync(d, queue, new WorkerIdentity("node-2/1/0", "node-2"), "qb");
        // A processed file that failed, in corpus b.
        var w = new WorkerIdentity("node-2/1/0", "node-2");
        var ok = Assert.Single(await queue.ClaimAsync(w, ["qb"]));
        Assert.True(await queue.CompleteAsync(ok, w, [], [new FileFailureRow(await FileOfAsync(d, ok.Id), 0, 60, "truncated data")]));

        var all = await d.GetHtmlAsync("/failures");
        Assert.Contains($"<tr data-shard=\"{inA}\">", all);
        Assert.Contains($"<tr data-shard=\"{inB}\">", all);
        Assert.Contains("action=\"/api/shards/rerun\"", all);
        Assert.Contains("<button id=\"rerun-all\">re-run all failed</button>", all);
        Assert.Contains("<input type=\"hidden\" name=\"all\" value=\"1\">", RerunAllForm().Match(all).Value); // no filter: says "all" explicitly
        Assert.Contains("action=\"/api/corpora/b/rerun-failed-files\"", all);
        Assert.Contains("truncated data", all);
        Assert.Contains($"<a href=\"/shards/{ok.Id}\">", all);
        Assert.DoesNotContain("action=\"/api/corpora/a/rerun-failed-files\"", all);

        var onlyA = await d.GetHtmlAsync("/failures?corpus=a");
        Assert.Contains($"<tr data-shard=\"{inA}\">", onlyA);
        Assert.DoesNotContain($"data-shard=\"{inB}\"", onlyA);
        Assert.Contains($"action=\"/api/shards/{inA}/rerun\"", onlyA);
        var rerunAll = RerunAllForm().Match(onlyA);
        Assert.True(rerunAll.Success, onlyA);
        Assert.Contains("<input type=\"hidden\" name=\"corpus\" value=\"a\">", rerunAll.Value);
        Assert.Contains("<input type=\"hidden\" name=\"return\" value=\"/failures?corpus=a\">", rerunAll.Value);
        Assert.Contains("name=\"__RequestVerificationToken\"", rerunAll.Value);
        Assert.DoesNotContain("name=\"queue\"", rerunAll.Value);

        var byNode = await d.GetHtmlAsync("/failures?node=node-2&queue=qb");
        Assert.Contains($"<tr data-shard=\"{inB}\">", byNode);
        Assert.DoesNotContain($"data-shard=\"{inA}\"", byNode);
        var form = RerunAllForm().Match(byNode).Value;
        Assert.Contains("name=\"node\" value=\"node-2\"", form);
        Assert.Contains("name=\"queue\" value=\"qb\"", form);

        var byWorker = await d.GetHtmlAsync("/failures?worker=node-1/1/0");
        Assert.Contains($"data-shard=\"{inA}\"", byWorker);
        Assert.DoesNotContain($"data-shard=\"{inB}\"", byWorker);
        var byFile = await d.GetHtmlAsync("/failures?file=B/F00000");
        Assert.Contains($"data-shard=\"{inB}\"", byFile);
        Assert.DoesNotContain($"data-shard=\"{inA}\"", byFile);
        Assert.Contains("id=\"no-dead\"", await d.GetHtmlAsync("/failures?worker=nobody"));

        var unknown = await d.GetHtmlAsync("/failures?corpus=nope", HttpStatusCode.NotFound);
        PageAssert.HasNav(unknown);
        Assert.Contains("nope", unknown);
        await d.GetHtmlAsync("/failures?after=x", HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Failures_pages_dead_shards_and_failed_files_by_keyset_without_repeats()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var c = await d.SeedCorpusAsync(230, "big");
        await db.ScalarAsync<int>("WITH x AS (UPDATE shards SET state = 'dead' WHERE corpus_id = @c AND ordinal < 150 RETURNING 1) SELECT count(*)::int FROM x", ("c", c));
        // 130 files unreadable at enqueue: the failed-file list pages through them too.
        await db.ScalarAsync<int>("WITH x AS (UPDATE files SET duration_seconds = NULL, error = 'unreadable' WHERE corpus_id = @c AND file_index < 130 RETURNING 1) SELECT count(*)::int FROM x", ("c", c));
        await db.ScalarAsync<int>("WITH x AS (UPDATE corpora SET failed_files = 130 WHERE id = @c RETURNING 1) SELECT count(*)::int FROM x", ("c", c));

        var first = await d.GetHtmlAsync("/failures?corpus=big");
        var next = NextLink().Match(first);
        Assert.True(next.Success);
        var second = await d.GetHtmlAsync(WebUtility.HtmlDecode(next.Groups[1].Value));
        var ids = ShardRow().Matches(first).Concat(ShardRow().Matches(second)).Select(m => long.Parse(m.Groups[1].Value)).ToList();
        Assert.Equal(100, ShardRow().Matches(first).Count);
        Assert.Equal(150, ids.Distinct().Count());
        Assert.Equal(150, ids.Count);
        Assert.DoesNotContain("id=\"next\"", second);

        Assert.Equal(100, Regex.Matches(first, "<td class=\"error\">unreadable</td>").Count);
        var moreFiles = Regex.Match(first, "id=\"next-files\" href=\"([^\"]+)\"");
        Assert.True(moreFiles.Success);
        var filesPage = await d.GetHtmlAsync(WebUtility.HtmlDecode(moreFiles.Groups[1].Value));
        Assert.Equal(30, Regex.Matches(filesPage, "<td class=\"error\">unreadable</td>").Count);

        // Without a corpus filter each corpus shows a few failed files and links to the rest.
        var overview = await d.GetHtmlAsync("/failures");
        Assert.Equal(10, Regex.Matches(overview, "<td class=\"error\">unreadable</td>").Count);
        Assert.Contains("<a href=\"/failures?corpus=big\">all 130 failed files of big</a>", overview);
    }

    [Fact]
    public async Task Fleet_flags_a_gpu_slot_on_cpu_and_a_crash_looping_slot()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var registry = new WorkerRegistry(db.DataSource, d.Time);
        await registry.RegisterAsync(new WorkerRegistration("gpu-node/10/0", "gpu-node", 10, 0, "0", "GPU-1", "H100", "CUDAExecutionProvider", 1, "v1", ["default"]));
        await registry.RegisterAsync(new WorkerRegistration("gpu-node/11/1", "gpu-node", 11, 1, "1", "GPU-2", "H100", "CPUExecutionProvider", 1, "v1", ["default"]));
        await registry.RegisterAsync(new WorkerRegistration("gpu-node/12/2", "gpu-node", 12, 2, "2", "GPU-3", "H100", "CUDAExecutionProvider", 1, "v1", ["default"]));
        await registry.StopAsync("gpu-node/12/2", "crash_looping", "exited 5 times in 60 s: CUDA error");
        await registry.UpsertGpuAsync(new GpuSample("gpu-node", 0, "GPU-1", "NVIDIA H100", 87, 40_000, 81_559, 61, d.Time.GetUtcNow().UtcDateTime));
        d.Time.Advance(TimeSpan.FromSeconds(5));

        var html = await d.GetHtmlAsync("/fleet");
        Assert.Matches("<tr class=\"gpu-on-cpu\" data-worker=\"gpu-node/11/1\">", html);
        Assert.Matches("<tr class=\"crash-looping\" data-worker=\"gpu-node/12/2\">.*crash_looping.*exited 5 times", html);
        Assert.Contains("<tr data-worker=\"gpu-node/10/0\">", html);
        Assert.Contains("id=\"gpu-on-cpu-warning\"", html);
        Assert.Contains("id=\"crash-looping-warning\"", html);
        Assert.Contains("tr.gpu-on-cpu td{background:#ffcdd2", html);
        Assert.Contains("NVIDIA H100", html);
        Assert.Contains(">87 %<", html);
        Assert.Contains(">61 °C<", html);
        Assert.Contains(">5 s<", html);
        Assert.Contains("<tr data-node=\"gpu-node\"><td>gpu-node</td><td>2 / 3</td>", html);
        Assert.Contains("id=\"gpu-on-cpu-warning\"", await d.GetHtmlAsync("/corpora"));

        // Once that slot has stopped the warning goes away (it counts running slots).
        await registry.StopAsync("gpu-node/11/1");
        Assert.DoesNotContain("id=\"gpu-on-cpu-warning\"", await d.GetHtmlAsync("/corpora"));
    }

    [Fact]
    public async Task The_overview_has_data_fields_cancel_and_pause_buttons_and_the_chart()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(4, "live", queue: "fast");
        await d.SeedCorpusAsync(1, "over", queue: "slow");
        await db.ScalarAsync<int>("WITH x AS (UPDATE shards s SET state = 'succeeded', processed_seconds = s.audio_seconds, finished_at = now() FROM corpora c WHERE c.id = s.corpus_id AND c.name = 'over' RETURNING 1) SELECT count(*)::int FROM x");

        var html = await d.GetHtmlAsync("/corpora");
        var live = CorpusRow().Match(html);
        Assert.True(live.Success, html);
        Assert.Contains("<td data-field=\"progress\" class=\"num\">0.0%</td>", live.Value);
        Assert.Contains("<td data-field=\"shards\">4 / 0 / 0 / 0 / 0</td>", live.Value);
        Assert.Contains("<td data-field=\"failed-files\" class=\"num\">0</td>", live.Value);
        Assert.Contains("<td data-field=\"eta\">-</td>", live.Value);
        Assert.Contains("action=\"/api/corpora/live/cancel\"", live.Value);
        Assert.Contains("<button>cancel</button>", live.Value);
        Assert.Contains("<tr data-corpus=\"over\">", html);
        Assert.DoesNotContain("action=\"/api/corpora/over/cancel\"", html);
        Assert.Contains("<td data-field=\"progress\" class=\"num\">100.0%</td>", html);
        Assert.Contains("action=\"/api/queues/fast/pause\"", html);
        Assert.Contains("<button>pause queue</button>", html);
        Assert.Contains("<svg id=\"throughput-chart\"", html);
        Assert.Contains("<script src=\"/dashboard.js\"></script>", html);
        Assert.DoesNotContain("<script>", html);
        Assert.Contains("<a href=\"/failures\">", html);

        using (var r = await d.PostAsync("/api/queues/fast/pause")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        html = await d.GetHtmlAsync("/corpora");
        Assert.Contains("action=\"/api/queues/fast/resume\"", html);
        Assert.Contains("<button>resume queue</button>", html);
        Assert.Contains("action=\"/api/queues/slow/pause\"", html);

        using (var r = await d.PostAsync("/api/corpora/live/cancel")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.DoesNotContain("action=\"/api/corpora/live/cancel\"", await d.GetHtmlAsync("/corpora"));
    }

    [Fact]
    public async Task The_overview_lists_only_a_few_failed_shards_and_counts_them_all()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var c = await d.SeedCorpusAsync(40, "c");
        await db.ScalarAsync<int>("WITH x AS (UPDATE shards SET state = 'dead' WHERE corpus_id = @c AND ordinal < 30 RETURNING 1) SELECT count(*)::int FROM x", ("c", c));
        var html = await d.GetHtmlAsync("/corpora");
        Assert.Contains("30 failed shards", html);
        Assert.Equal(10, Regex.Matches(html, "<tr data-shard=").Count);
    }

    [Fact]
    public async Task The_script_is_served_and_polls_corpora_and_history()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/dashboard.js"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("text/javascript", r.Content.Headers.ContentType?.MediaType);
        var js = await r.Content.ReadAsStringAsync();
        Assert.Contains("/api/history?minutes=60", js);
        Assert.Contains("/api/corpora", js);
        Assert.Contains("throughput-chart", js);
        Assert.Contains("data-field", js);
        Assert.Contains("setInterval(refresh, 5000)", js);
    }

    [Fact]
    public async Task Audit_lists_newest_first_and_pages_older_entries_by_keyset()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await db.ScalarAsync<int>("""
            WITH x AS (INSERT INTO audit_log (at, actor, remote_address, action, target, rows_affected)
                       SELECT now(), 'ops', '10.0.0.1', 'queue.pause', 'q' || g, 1 FROM generate_series(1, 130) g RETURNING 1)
            SELECT count(*)::int FROM x
            """);
        var first = await d.GetHtmlAsync("/audit");
        var ids = AuditRow().Matches(first).Select(m => long.Parse(m.Groups[1].Value)).ToList();
        Assert.Equal(100, ids.Count);
        Assert.Equal(ids.OrderDescending(), ids);
        Assert.Contains("<td>q130</td>", first);
        var older = Regex.Match(first, "<a id=\"older\" href=\"([^\"]+)\">older</a>");
        Assert.True(older.Success);
        var second = await d.GetHtmlAsync(WebUtility.HtmlDecode(older.Groups[1].Value));
        var rest = AuditRow().Matches(second).Select(m => long.Parse(m.Groups[1].Value)).ToList();
        Assert.Equal(30, rest.Count);
        Assert.True(rest.Max() < ids.Min());
        Assert.Contains("<td>q1</td>", second);
        Assert.DoesNotContain("id=\"older\"", second);
        await d.GetHtmlAsync("/audit?before=yesterday", HttpStatusCode.BadRequest);
    }

    [GeneratedRegex("<form method=\"post\" action=\"/api/shards/rerun\">.*?</form>")]
    private static partial Regex RerunAllForm();
    [GeneratedRegex("<a id=\"next\" href=\"([^\"]+)\">")]
    private static partial Regex NextLink();
    [GeneratedRegex("<tr data-shard=\"(\\d+)\">")]
    private static partial Regex ShardRow();
    [GeneratedRegex("<tr data-audit=\"(\\d+)\">")]
    private static partial Regex AuditRow();
    [GeneratedRegex("<tr data-corpus=\"live\">.*?</tr>")]
    private static partial Regex CorpusRow();
}
