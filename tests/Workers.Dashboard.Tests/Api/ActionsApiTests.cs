using System.Net;
using System.Text.Json;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Api;

[Collection(PostgresCollection.Name)]
public sealed class ActionsApiTests(PostgresFixture pg)
{
    [Fact]
    public async Task Rerun_failed_requeues_every_dead_shard_of_the_corpus_in_one_action_and_audits_it()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var c = await d.SeedCorpusAsync(20, "c");
        await d.SeedCorpusAsync(5, "untouched");
        await db.ScalarAsync<int>("WITH x AS (UPDATE shards SET state = 'dead', attempt = 3, last_error = 'boom' WHERE corpus_id = @c AND ordinal % 3 = 0 RETURNING 1) SELECT count(*)::int FROM x", ("c", c));
        await db.ScalarAsync<int>("WITH x AS (UPDATE shards SET state = 'dead' WHERE corpus_id <> @c RETURNING 1) SELECT count(*)::int FROM x", ("c", c));

        using var r = await d.PostAsync("/api/corpora/c/rerun-failed");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(7, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("rerun").GetInt32());

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE corpus_id = @c AND state = 'dead'", ("c", c)));
        // A fresh budget: attempts so far + Queue:MaxAttempts; the fencing token (attempt) is untouched.
        Assert.Equal(7L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE corpus_id = @c AND attempt = 3 AND max_attempts = 6 AND state = 'queued'", ("c", c)));
        Assert.Equal(5L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE corpus_id <> @c AND state = 'dead'", ("c", c)));

        var audit = await d.GetJsonAsync("/api/audit");
        var entry = Assert.Single(audit.GetProperty("entries").EnumerateArray());
        Assert.Equal("corpus.rerun_failed", entry.GetProperty("action").GetString());
        Assert.Equal("corpus:c", entry.GetProperty("target").GetString());
        Assert.Equal(7, entry.GetProperty("rows_affected").GetInt32());
        Assert.Equal("local", entry.GetProperty("actor").GetString());
        Assert.Equal("127.0.0.1", entry.GetProperty("remote_address").GetString());

        using var missing = await d.PostAsync("/api/corpora/nope/rerun-failed");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Corpus_and_queue_names_with_slashes_and_spaces_can_be_acted_on_as_the_pages_link_them()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var c = await d.SeedCorpusAsync(3, "team/a b", queue: "gpu.h100");
        // The pages escape names with Uri.EscapeDataString, so "/" arrives as %2F, which ASP.NET leaves encoded in route values.
        using var cancel = await d.PostAsync($"/api/corpora/{Uri.EscapeDataString("team/a b")}/cancel");
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE corpus_id = @c AND state = 'cancelled'", ("c", c)));
        using var pause = await d.PostAsync($"/api/queues/{Uri.EscapeDataString("gpu.h100")}/pause");
        Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        Assert.Equal("gpu.h100", await db.ScalarAsync<string>("SELECT queue FROM paused_queues"));

        // Queue names follow the one name rule (issue 13): no '/', no space, no final newline.
        foreach (var bad in new[] { "gpu/h100", "q1\n", "a b" })
        {
            using var refused = await d.PostAsync($"/api/queues/{Uri.EscapeDataString(bad)}/pause");
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("letters, digits", await refused.Content.ReadAsStringAsync());
        }
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM paused_queues"));
    }

    [Fact]
    public async Task Rerun_of_one_shard_requeues_it_and_refuses_a_running_one()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(2);
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var w = new WorkerIdentity("w", "n");
        var running = Assert.Single(await queue.ClaimAsync(w, ["default"]));
        var other = await db.ScalarAsync<long>("SELECT id FROM shards WHERE id <> @id", ("id", running.Id));
        await db.ScalarAsync<int>("WITH x AS (UPDATE shards SET state = 'dead' WHERE id = @id RETURNING 1) SELECT count(*)::int FROM x", ("id", other));

        using var ok = await d.PostAsync($"/api/shards/{other}/rerun");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("queued", await db.ScalarAsync<string>("SELECT state::text FROM shards WHERE id = @id", ("id", other)));
        using var conflict = await d.PostAsync($"/api/shards/{running.Id}/rerun");
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log WHERE action = 'shard.rerun'"));
    }

    [Fact]
    public async Task A_paused_queue_is_skipped_by_claims_until_it_is_resumed()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(3, "ca", queue: "a");
        await d.SeedCorpusAsync(2, "cb", queue: "b");
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var w = new WorkerIdentity("w", "n");

        using (var r = await d.PostAsync("/api/queues/a/pause")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var claimed = await queue.ClaimAsync(w, ["a", "b"], max: 10);
        Assert.Equal(2, claimed.Count);
        Assert.All(claimed, s => Assert.Equal("b", s.Queue));
        Assert.Empty(await queue.ClaimAsync(w, ["a"], max: 10));
        Assert.Contains("a", (await d.GetJsonAsync("/api/queues")).GetProperty("paused").EnumerateArray().Select(p => p.GetProperty("queue").GetString()));

        using (var r = await d.PostAsync("/api/queues/a/resume")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var after = await queue.ClaimAsync(w, ["a", "b"], max: 10);
        Assert.Equal(3, after.Count);
        Assert.All(after, s => Assert.Equal("a", s.Queue));

        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log WHERE action = 'queue.pause' AND target = 'a' AND rows_affected = 1"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log WHERE action = 'queue.resume' AND target = 'a' AND rows_affected = 1"));
    }

    [Fact]
    public async Task The_overview_lists_corpora_with_progress_and_failed_shards_with_rerun_forms_carrying_the_token()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var c = await d.SeedCorpusAsync(4, "<speech&co>");
        var dead = await db.ScalarAsync<long>("UPDATE shards SET state = 'dead', last_error = '<script>x</script>' WHERE corpus_id = @c AND ordinal = 0 RETURNING id", ("c", c));

        using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/corpora"));
        var html = await r.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Contains("&lt;speech&amp;co&gt;", html);
        Assert.DoesNotContain("<script>x</script>", html);
        Assert.Contains("<progress", html);
        Assert.Contains("/shards?corpus=%3Cspeech%26co%3E", html);
        Assert.Contains($"action=\"/api/shards/{dead}/rerun\"", html);
        Assert.Contains("name=\"__RequestVerificationToken\"", html);
        Assert.Contains("src=\"/dashboard.js\"", html);

        var corpora = await d.GetJsonAsync("/api/corpora");
        var entry = Assert.Single(corpora.GetProperty("corpora").EnumerateArray());
        Assert.Equal(1, entry.GetProperty("failed_shards").GetInt32());
        Assert.Equal(3, entry.GetProperty("shards").GetProperty("queued").GetInt32());
        Assert.Equal(240.0, entry.GetProperty("audio_seconds").GetDouble());
    }
}
