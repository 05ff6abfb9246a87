using System.Net;
using System.Text.Json;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Api;

[Collection(PostgresCollection.Name)]
public sealed class ShardsApiTests(PostgresFixture pg)
{
    [Fact]
    public async Task Keyset_pagination_returns_every_shard_exactly_once_across_pages()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(1234, "big");
        await d.SeedCorpusAsync(10, "other");

        var seen = new List<long>();
        long? after = 0;
        var pages = 0;
        while (after is not null)
        {
            var page = await d.GetJsonAsync($"/api/shards?corpus=big&limit=100&after={after}");
            seen.AddRange(page.GetProperty("shards").EnumerateArray().Select(s => s.GetProperty("id").GetInt64()));
            after = page.GetProperty("next_after").ValueKind == JsonValueKind.Null ? null : page.GetProperty("next_after").GetInt64();
            pages++;
        }
        Assert.Equal(1234, seen.Count);
        Assert.Equal(1234, seen.Distinct().Count());
        Assert.Equal(seen.Order(), seen);
        Assert.InRange(pages, 13, 14);
        Assert.Equal(1234L, await db.ScalarAsync<long>("SELECT count(*) FROM shards s JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'big'"));

        var capped = await d.GetJsonAsync("/api/shards?limit=100000");
        Assert.Equal(500, capped.GetProperty("shards").GetArrayLength());
        Assert.Equal(500, capped.GetProperty("limit").GetInt32());
    }

    [Fact]
    public async Task Filters_by_file_text_state_and_worker_find_the_right_shards()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(50, "c");
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var w = new WorkerIdentity("node-a/1/0", "node-a", "0", "CPUExecutionProvider");
        var claimed = Assert.Single(await queue.ClaimAsync(w, ["default"]));

        var byFile = await d.GetJsonAsync("/api/shards?file=F000017");
        var hit = Assert.Single(byFile.GetProperty("shards").EnumerateArray());
        var detail = await d.GetJsonAsync($"/api/shards/{hit.GetProperty("id").GetInt64()}");
        Assert.Contains("f000017", detail.GetProperty("items")[0].GetProperty("path").GetString());

        var running = await d.GetJsonAsync("/api/shards?state=running");
        Assert.Equal(claimed.Id, Assert.Single(running.GetProperty("shards").EnumerateArray()).GetProperty("id").GetInt64());
        var byWorker = await d.GetJsonAsync("/api/shards?worker=node-a/1/0");
        Assert.Single(byWorker.GetProperty("shards").EnumerateArray());
        Assert.Empty((await d.GetJsonAsync("/api/shards?node=node-b")).GetProperty("shards").EnumerateArray());

        using var bad = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/shards?state=exploded"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        using var missing = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/shards?corpus=nope"));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task A_shard_page_shows_its_attempts_with_the_error_a_person_needs()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(1);
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var w = new WorkerIdentity("node-a/1/0", "node-a", "0", "CUDAExecutionProvider");
        var s = Assert.Single(await queue.ClaimAsync(w, ["default"]));
        await queue.FailAsync(s, w, new ShardFailure("DecoderException", "bad header in f000000.wav", "at Decode()", "last log line"));

        var detail = await d.GetJsonAsync($"/api/shards/{s.Id}");
        var attempt = Assert.Single(detail.GetProperty("attempts").EnumerateArray());
        Assert.Equal("DecoderException", attempt.GetProperty("error_type").GetString());
        Assert.Equal("bad header in f000000.wav", attempt.GetProperty("error_message").GetString());
        Assert.Equal("at Decode()", attempt.GetProperty("error_stack").GetString());
        Assert.Equal("last log line", attempt.GetProperty("log_tail").GetString());
        Assert.Equal("node-a", attempt.GetProperty("node").GetString());
        Assert.Equal(0, detail.GetProperty("segments").GetInt64());
        Assert.Single(detail.GetProperty("items").EnumerateArray());
        using var none = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/shards/999999"));
        Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
    }
}
