using System.Net;
using System.Text;
using System.Text.Json;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Api;

/// <summary>GET /api/history, POST /api/shards/rerun and POST /api/corpora/{name}/rerun-failed-files.</summary>
[Collection(PostgresCollection.Name)]
public sealed class BackendApiTests(PostgresFixture pg)
{
    [Fact]
    public async Task History_is_zero_filled_ascending_per_minute_capped_at_a_day_and_refuses_bad_minutes()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 30, TimeSpan.Zero));
        await using var d = await TestDashboard.StartAsync(db, time: time);
        await d.SeedCorpusAsync(3);
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, time);
        var w = new WorkerIdentity("w", "n");
        foreach (var s in await queue.ClaimAsync(w, ["default"], max: 2)) Assert.True(await queue.CompleteAsync(s, w, []));
        time.Advance(TimeSpan.FromMinutes(2)); // 12:02:30

        var h = await d.GetJsonAsync("/api/history?minutes=4");
        Assert.Equal(60, h.GetProperty("bucket_seconds").GetInt32());
        var points = h.GetProperty("points").EnumerateArray().ToList();
        Assert.Equal(new[] { "2026-03-01T11:59:00Z", "2026-03-01T12:00:00Z", "2026-03-01T12:01:00Z", "2026-03-01T12:02:00Z" },
            points.Select(p => p.GetProperty("at").GetDateTime().ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(new[] { 0, 2, 0, 0 }, points.Select(p => p.GetProperty("shards_succeeded").GetInt32()));
        Assert.Equal(new[] { 0.0, 120, 0, 0 }, points.Select(p => p.GetProperty("audio_seconds").GetDouble()));
        Assert.All(points, p => Assert.Equal(0, p.GetProperty("attempts_failed").GetInt32()));

        Assert.Equal(60, (await d.GetJsonAsync("/api/history")).GetProperty("points").GetArrayLength());
        Assert.Equal(1440, (await d.GetJsonAsync("/api/history?minutes=100000")).GetProperty("points").GetArrayLength());
        foreach (var bad in new[] { "0", "-5", "abc", "1.5" })
        {
            using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/history?minutes=" + bad));
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Contains("minutes", JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        }
    }

    [Fact]
    public async Task Rerun_by_filter_needs_a_corpus_or_queue_or_all_and_requeues_the_matching_dead_shards_from_a_form_or_json()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var a = await d.SeedCorpusAsync(4, "a", queue: "qa");
        var b = await d.SeedCorpusAsync(3, "b", queue: "qb");
        await db.ScalarAsync<int>("WITH x AS (UPDATE shards SET state = 'dead', attempt = 3 WHERE ordinal < 3 RETURNING 1) SELECT count(*)::int FROM x");

        using (var empty = await PostJsonAsync(d, "/api/shards/rerun", "{}"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
            Assert.Contains("all=1", await empty.Content.ReadAsStringAsync());
        }
        using (var nodeOnly = await d.PostAsync("/api/shards/rerun?node=n1")) Assert.Equal(HttpStatusCode.BadRequest, nodeOnly.StatusCode);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log"));
        Assert.Equal(6L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'dead'"));

        // A page's form: 303 back to the page it came from.
        using (var form = await PostFormAsync(d, "/api/shards/rerun", ("corpus", "a"), ("file", "a/f000001"), ("return", "/failures?corpus=a")))
        {
            Assert.Equal(HttpStatusCode.SeeOther, form.StatusCode);
            Assert.Equal("/failures?corpus=a", form.Headers.Location!.ToString());
        }
        Assert.Equal("queued", await db.ScalarAsync<string>("SELECT state::text FROM shards WHERE corpus_id = @a AND ordinal = 1", ("a", a)));
        Assert.Equal(5L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'dead'"));

        using (var json = await PostJsonAsync(d, "/api/shards/rerun", """{"queue": "qb"}"""))
        {
            Assert.Equal(HttpStatusCode.OK, json.StatusCode);
            Assert.Equal(3, JsonDocument.Parse(await json.Content.ReadAsStringAsync()).RootElement.GetProperty("rerun").GetInt32());
        }
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE corpus_id = @b AND state = 'queued' AND max_attempts = 6", ("b", b)));

        using (var all = await PostJsonAsync(d, "/api/shards/rerun", """{"all": true}""")) Assert.Equal(HttpStatusCode.OK, all.StatusCode);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'dead'"));

        Assert.Equal("shards:corpus=a,file=a/f000001|1 shards:queue=qb|3 shards:all|2", await db.ScalarAsync<string>(
            "SELECT string_agg(target || '|' || rows_affected, ' ' ORDER BY id) FROM audit_log WHERE action = 'shards.rerun'"));
    }

    [Fact]
    public async Task Rerun_failed_files_answers_the_new_shard_then_409_when_nothing_is_left()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var c = await d.SeedCorpusAsync(2);
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var w = new WorkerIdentity("w", "n");
        var shards = await queue.ClaimAsync(w, ["default"], max: 2);
        Assert.True(await queue.CompleteAsync(shards[0], w, [], [new FileFailureRow(0, 5, 15, "decode")]));
        Assert.True(await queue.CompleteAsync(shards[1], w, []));

        using (var r = await d.PostAsync("/api/corpora/c/rerun-failed-files"))
        {
            var body = await r.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            var json = JsonDocument.Parse(body).RootElement;
            Assert.Equal("c", json.GetProperty("corpus").GetString());
            Assert.Equal(1, json.GetProperty("files").GetInt32());
            Assert.Equal("queued", await db.ScalarAsync<string>("SELECT state::text FROM shards WHERE id = @id", ("id", json.GetProperty("shard").GetInt64())));
        }
        var corpus = Assert.Single((await d.GetJsonAsync("/api/corpora")).GetProperty("corpora").EnumerateArray());
        Assert.Equal(0, corpus.GetProperty("failed_files").GetInt32());

        using (var again = await d.PostAsync("/api/corpora/c/rerun-failed-files")) Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        using (var missing = await d.PostAsync("/api/corpora/nope/rerun-failed-files")) Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log WHERE action = 'corpus.rerun_failed_files' AND rows_affected = 1"));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE corpus_id = @c", ("c", c)));
    }

    private static async Task<HttpResponseMessage> PostJsonAsync(TestDashboard d, string url, string json)
    {
        var (cookie, token) = await d.AntiforgeryAsync();
        var m = TestDashboard.Request(HttpMethod.Post, url);
        m.Headers.Add("Cookie", cookie);
        m.Headers.Add("X-CSRF-TOKEN", token);
        m.Content = new StringContent(json, Encoding.UTF8, "application/json");
        return await d.Client.SendAsync(m);
    }

    private static async Task<HttpResponseMessage> PostFormAsync(TestDashboard d, string url, params (string Name, string Value)[] fields)
    {
        var (cookie, token) = await d.AntiforgeryAsync();
        var m = TestDashboard.Request(HttpMethod.Post, url);
        m.Headers.Add("Cookie", cookie);
        m.Content = new FormUrlEncodedContent(fields.Select(f => KeyValuePair.Create(f.Name, f.Value))
            .Append(KeyValuePair.Create("__RequestVerificationToken", token)));
        return await d.Client.SendAsync(m);
    }
}
