using Workers.Postgres.Fleet;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Pages;

/// <summary>Pipelines of stages on the dashboard (issue 15): shards no worker can take, stage results per corpus and per shard.</summary>
[Collection(PostgresCollection.Name)]
public sealed class StagePagesTests(PostgresFixture pg)
{
    [Fact]
    public async Task Shards_of_a_pipeline_no_running_worker_serves_are_shown_and_stage_results_are_counted()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var corpus = await d.SeedCorpusAsync(3, name: "emo", pipeline: "emotion");
        await d.SeedCorpusAsync(1, name: "plain");

        // No worker runs: nothing is called unservable (the fleet page says no worker runs).
        Assert.Equal(0, (await d.GetJsonAsync("/api/corpora")).GetProperty("unservable").GetArrayLength());

        var registry = new WorkerRegistry(db.DataSource, d.Time);
        await registry.RegisterAsync(new WorkerRegistration("n/1/0", "n", 1, 0, null, null, null, "CPUExecutionProvider", 1, "0", ["default"]) { Pipelines = ["vad"] });
        var json = await d.GetJsonAsync("/api/corpora");
        var u = Assert.Single(json.GetProperty("unservable").EnumerateArray());
        Assert.Equal("emotion", u.GetProperty("pipeline").GetString());
        Assert.Equal(3, u.GetProperty("shards").GetInt32());
        Assert.Equal(180.0, u.GetProperty("audio_seconds").GetDouble());
        var html = await d.GetHtmlAsync("/corpora");
        Assert.Contains("Shards no running worker can take", html);
        Assert.Contains("pipeline <code>emotion</code>: 3 queued shards", html);

        // A worker that serves emotion takes it away; it completes a shard with results.
        await registry.RegisterAsync(new WorkerRegistration("n/2/0", "n", 2, 1, null, null, null, "CPUExecutionProvider", 1, "0", ["default"]) { Pipelines = ["emotion", "vad"] });
        Assert.Equal(0, (await d.GetJsonAsync("/api/corpora")).GetProperty("unservable").GetArrayLength());
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var who = new WorkerIdentity("n/2/0", "n");
        var shard = Assert.Single(await queue.ClaimAsync(who, ["default"], pipelines: ["emotion"]));
        var file = await db.ScalarAsync<int>("SELECT file_index FROM shard_items WHERE shard_id = @id", ("id", shard.Id));
        Assert.True(await queue.CompleteAsync(shard, who, [new SegmentRow(file, 1, 2), new SegmentRow(file, 3, 4)],
            results: [new(file, 1, "emotion", """{"logits": {"labels": ["<happy>"], "scores": [0.9]}}"""), new(file, 3, "emotion", """{"logits": {"labels": ["sad"], "scores": [0.6]}}""")]));

        var emo = (await d.GetJsonAsync("/api/corpora")).GetProperty("corpora").EnumerateArray().Single(c => c.GetProperty("id").GetInt64() == corpus);
        Assert.Equal(2, emo.GetProperty("stage_results").GetInt64());
        Assert.Contains("(emotion: 2 stage results)", await d.GetHtmlAsync("/corpora"));
        var page = await d.GetHtmlAsync($"/shards/{shard.Id}");
        Assert.Contains("id=\"stage-results\"", page);
        Assert.Contains("&lt;happy&gt;", page); // encoded like every other value
        Assert.DoesNotContain("<happy>", page);
    }

    [Theory]
    [InlineData(298, 298 + 2)] // the pair fits: kept whole
    [InlineData(299, 299)]     // the pair would straddle the cut: left out whole
    [InlineData(300, 300)]
    public void A_long_stage_result_is_cut_between_characters_never_inside_one(int before, int kept)
    {
        int n;
        var text = new string('a', before) + "\U0001F600" + new string('b', 50); // an emoji: two UTF-16 units
        var cut = Workers.Dashboard.Pages.ShardPages.Cut(text, 300);
        Assert.Equal(text[..kept] + "...", cut);
        for (var rest = cut.AsSpan(); !rest.IsEmpty; rest = rest[n..]) // every character whole: no half of a pair
            Assert.Equal(System.Buffers.OperationStatus.Done, System.Text.Rune.DecodeFromUtf16(rest, out _, out n));
        Assert.Equal("short", Workers.Dashboard.Pages.ShardPages.Cut("short", 300));
    }
}
