using System.Globalization;
using System.Text.RegularExpressions;
using Workers.Postgres.Fleet;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Metrics;

[Collection(PostgresCollection.Name)]
public sealed partial class MetricsTests(PostgresFixture pg)
{
    [Fact]
    public async Task Metrics_parse_as_prometheus_text_with_the_expected_series()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(5);
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var w = new WorkerIdentity("node-a/1/0", "node-a", "0", "CPUExecutionProvider");
        var s = Assert.Single(await queue.ClaimAsync(w, ["default"]));
        Assert.True(await queue.CompleteAsync(s, w, [new SegmentRow(0, 1, 2)]));
        var registry = new WorkerRegistry(db.DataSource, d.Time);
        // A GPU slot whose session fell back to CPU: counted by workers_gpu_slots_on_cpu.
        await registry.RegisterAsync(new WorkerRegistration("node-a/1/0", "node-a", 1, 0, "0", "GPU-1", "H100 \"SXM\"", "CPUExecutionProvider", 4, "t", ["default"]));
        await registry.UpsertGpuAsync(new GpuSample("node-a", 0, "GPU-1", "H100 \"SXM\"", 87.5, 1024, 81920, 60, d.Time.GetUtcNow().UtcDateTime));

        var samples = await ScrapeAsync(d);

        Assert.Equal(4, samples["workers_shards{state=\"queued\"}"]);
        Assert.Equal(1, samples["workers_shards{state=\"succeeded\"}"]);
        Assert.Equal(0, samples["workers_shards{state=\"dead\"}"]);
        Assert.Equal(60, samples["workers_audio_processed_seconds"]);
        Assert.Equal(300, samples["workers_audio_enqueued_seconds"]);
        Assert.Equal(60.0 / 600, samples["workers_throughput_audio_seconds_per_second"], 6);
        Assert.Equal(1, samples["workers_workers{state=\"running\"}"]);
        Assert.Equal(1, samples["workers_gpu_slots_on_cpu"]);
        Assert.Equal(87.5, samples["workers_gpu_utilization_percent{node=\"node-a\",gpu=\"0\",name=\"H100 \\\"SXM\\\"\"}"]);
        // Hangfire's own job counts (issue 12): none yet, and the count of its servers.
        Assert.Equal(0, samples["workers_hangfire_jobs{state=\"failed\"}"]);
        Assert.Equal(0, samples["workers_hangfire_jobs{state=\"enqueued\"}"]);
        Assert.True(samples.ContainsKey("workers_hangfire_servers"));
    }

    [Fact]
    public async Task Lifetime_counters_never_drop_on_a_rerun_and_claim_latency_reported_by_heartbeats_is_a_fleet_summary()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var c = await d.SeedCorpusAsync(3);
        var queue = new ShardQueue(db.DataSource, TestDashboard.Queue, d.Time);
        var w = new WorkerIdentity("node-a/1/0", "node-a");
        foreach (var s in await queue.ClaimAsync(w, ["default"], max: 2)) Assert.True(await queue.CompleteAsync(s, w, []));
        var failing = Assert.Single(await queue.ClaimAsync(w, ["default"]));
        await queue.FailAsync(failing, w, new ShardFailure("Boom", "boom"));

        var registry = new WorkerRegistry(db.DataSource, d.Time);
        foreach (var id in new[] { "node-a/1/0", "node-b/2/0" })
            await registry.RegisterAsync(new WorkerRegistration(id, id[..6], 1, 0, null, null, null, "CPUExecutionProvider", 4, "t", ["default"]));
        await registry.HeartbeatAsync("node-a/1/0", null, null, new ClaimStats(10, 0.5, 20, 120));
        await registry.HeartbeatAsync("node-b/2/0", null, null, new ClaimStats(30, 1.5, 40, 80));
        // A beat of an interval without claims keeps the last interval's max.
        await registry.HeartbeatAsync("node-b/2/0", null, null, new ClaimStats(30, 1.5, 40, null));

        var before = await ScrapeAsync(d);
        Assert.Equal(120, before["workers_audio_processed_seconds_total"]);
        Assert.Equal(2, before["workers_shards_succeeded_total"]);
        Assert.Equal(1, before["workers_attempts_failed_total"]);
        Assert.Equal(40, before["workers_claim_latency_seconds_count"]);
        Assert.Equal(2.0, before["workers_claim_latency_seconds_sum"], 9);
        Assert.Equal(0.12, before["workers_claim_latency_max_seconds"], 9);
        Assert.Equal(0.04, before["workers_claim_latency_last_seconds"], 9);

        using (var r = await d.PostAsync("/api/shards/rerun?all=1")) Assert.Equal(System.Net.HttpStatusCode.OK, r.StatusCode);
        var ids = await db.ScalarAsync<long[]>("SELECT array_agg(id) FROM shards WHERE corpus_id = @c AND state = 'succeeded'", ("c", c));
        using (var r = await d.PostAsync($"/api/shards/{ids[0]}/rerun")) Assert.Equal(System.Net.HttpStatusCode.OK, r.StatusCode);
        var after = await ScrapeAsync(d);
        Assert.Equal(60, after["workers_audio_processed_seconds"]); // the gauge drops with the re-run...
        Assert.Equal(120, after["workers_audio_processed_seconds_total"]); // ...the counter does not
        Assert.Equal(2, after["workers_shards_succeeded_total"]);
    }

    /// <summary>GET /metrics, checked line by line as Prometheus text; the samples by name and labels.</summary>
    private static async Task<Dictionary<string, double>> ScrapeAsync(TestDashboard d)
    {
        using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/metrics"));
        Assert.StartsWith("text/plain", r.Content.Headers.ContentType!.ToString());
        var text = await r.Content.ReadAsStringAsync();

        var samples = new Dictionary<string, double>();
        var typed = new Dictionary<string, string>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# HELP ", StringComparison.Ordinal)) continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.Equal(4, parts.Length);
                Assert.Contains(parts[3], new[] { "gauge", "counter", "summary" });
                Assert.True(typed.TryAdd(parts[2], parts[3]), "TYPE given twice for " + parts[2]);
                continue;
            }
            var m = SampleLine().Match(line);
            Assert.True(m.Success, "not a Prometheus sample line: " + line);
            var name = m.Groups["name"].Value;
            Assert.StartsWith("workers_", name);
            // TYPE comes before the samples; a summary's samples are its name plus _sum and _count.
            var family = typed.ContainsKey(name) ? name : SummarySuffix().Replace(name, "");
            Assert.True(typed.TryGetValue(family, out var type) && (family == name || type == "summary"), "no TYPE before " + name);
            samples[name + m.Groups["labels"].Value] = double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture);
        }
        return samples;
    }

    [GeneratedRegex("_(sum|count)$")]
    private static partial Regex SummarySuffix();

    // name{label="value",...} value  (label values escaped: \\ \" \n)
    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?<labels>\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (?<value>[-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|Inf))$""")]
    private static partial Regex SampleLine();
}
