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

        using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/metrics"));
        Assert.StartsWith("text/plain", r.Content.Headers.ContentType!.ToString());
        var text = await r.Content.ReadAsStringAsync();

        var samples = new Dictionary<string, double>();
        var typed = new HashSet<string>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# HELP ", StringComparison.Ordinal)) continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.Equal(4, parts.Length);
                Assert.Contains(parts[3], new[] { "gauge", "counter" });
                Assert.True(typed.Add(parts[2]), "TYPE given twice for " + parts[2]);
                continue;
            }
            var m = SampleLine().Match(line);
            Assert.True(m.Success, "not a Prometheus sample line: " + line);
            Assert.StartsWith("workers_", m.Groups["name"].Value);
            Assert.Contains(m.Groups["name"].Value, typed); // TYPE comes before the samples
            samples[m.Groups["name"].Value + m.Groups["labels"].Value] = double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture);
        }

        Assert.Equal(4, samples["workers_shards{state=\"queued\"}"]);
        Assert.Equal(1, samples["workers_shards{state=\"succeeded\"}"]);
        Assert.Equal(0, samples["workers_shards{state=\"dead\"}"]);
        Assert.Equal(60, samples["workers_audio_processed_seconds"]);
        Assert.Equal(300, samples["workers_audio_enqueued_seconds"]);
        Assert.Equal(60.0 / 600, samples["workers_throughput_audio_seconds_per_second"], 6);
        Assert.Equal(1, samples["workers_workers{state=\"running\"}"]);
        Assert.Equal(1, samples["workers_gpu_slots_on_cpu"]);
        Assert.Equal(87.5, samples["workers_gpu_utilization_percent{node=\"node-a\",gpu=\"0\",name=\"H100 \\\"SXM\\\"\"}"]);
    }

    // name{label="value",...} value  (label values escaped: \\ \" \n)
    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?<labels>\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (?<value>[-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|Inf))$""")]
    private static partial Regex SampleLine();
}
