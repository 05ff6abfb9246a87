using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Workers.Dashboard.Api;
using Workers.Postgres.Dashboard;
using Workers.Postgres.Fleet;

namespace Workers.Dashboard.Metrics;

/// <summary>
/// GET /metrics, Prometheus text with the <c>workers_</c> prefix. Cost per scrape: one pass over
/// shards grouped by state (O(shards), ~10 ms at 54,000), the corpora table, the recent-rate window
/// through the partial index shards_succeeded_finished, and the small workers, gpu_telemetry and
/// paused_queues tables. Nothing scans shard_items, segments or attempts.
/// </summary>
public static class MetricsEndpoint
{
    public static void Map(IEndpointRouteBuilder app) =>
        app.MapGet("/metrics", async (DashboardReader reader, WorkerRegistry registry, DashboardHost host, CancellationToken ct) =>
        {
            var m = await reader.MetricsAsync(ct);
            var now = host.Time.GetUtcNow().UtcDateTime;
            var workers = await registry.ListAsync(now - ApiEndpoints.FleetWindow, ct);
            var gpus = await registry.ListGpusAsync(ct);
            var stale = 3 * host.Queue.Heartbeat;

            var t = new PrometheusText();
            t.Family("workers_shards", "gauge", "Shards by state.");
            foreach (var (state, n) in m.ShardsByState) t.Sample("workers_shards", n, ("state", state));
            t.Family("workers_corpora", "gauge", "Corpora enqueued.").Sample("workers_corpora", m.Corpora);
            t.Family("workers_audio_enqueued_seconds", "gauge", "Audio seconds enqueued, all corpora.")
                .Sample("workers_audio_enqueued_seconds", m.EnqueuedSeconds);
            t.Family("workers_audio_processed_seconds", "gauge",
                    "Audio seconds processed: succeeded shards plus running shards' reported progress (drops when shards are re-run).")
                .Sample("workers_audio_processed_seconds", m.ProcessedSeconds);
            t.Family("workers_throughput_audio_seconds_per_second", "gauge",
                    $"Audio seconds of shards that succeeded in the last {DashboardReader.RateWindow.TotalMinutes:0} minutes, per wall-clock second.")
                .Sample("workers_throughput_audio_seconds_per_second", m.RecentAudioSeconds / DashboardReader.RateWindow.TotalSeconds);
            t.Family("workers_paused_queues", "gauge", "Queues paused from the dashboard.").Sample("workers_paused_queues", m.PausedQueues);

            t.Family("workers_workers", "gauge", "Worker processes by state (stale: running but no heartbeat for 3 heartbeat periods; stopped: within the last hour).");
            foreach (var state in new[] { "running", "stale", "stopped", "crash_looping" })
                t.Sample("workers_workers", workers.Count(w => (w.State == "running" && now - w.HeartbeatAt > stale ? "stale" : w.State) == state), ("state", state));
            t.Family("workers_gpu_slots_on_cpu", "gauge", "Running workers assigned a GPU whose inference runs on CPU.")
                .Sample("workers_gpu_slots_on_cpu", workers.Count(w => w.State == "running" && w.GpuSlotOnCpu));

            t.Family("workers_gpu_utilization_percent", "gauge", "GPU utilisation, latest sample per GPU.");
            foreach (var g in gpus.Where(g => g.UtilizationPercent is not null))
                t.Sample("workers_gpu_utilization_percent", g.UtilizationPercent!.Value, GpuLabels(g));
            t.Family("workers_gpu_memory_used_bytes", "gauge", "GPU memory in use, latest sample per GPU.");
            foreach (var g in gpus.Where(g => g.MemoryUsedMb is not null))
                t.Sample("workers_gpu_memory_used_bytes", g.MemoryUsedMb!.Value * 1024 * 1024, GpuLabels(g));
            t.Family("workers_gpu_memory_total_bytes", "gauge", "GPU memory, total.");
            foreach (var g in gpus.Where(g => g.MemoryTotalMb is not null))
                t.Sample("workers_gpu_memory_total_bytes", g.MemoryTotalMb!.Value * 1024 * 1024, GpuLabels(g));
            t.Family("workers_gpu_sample_age_seconds", "gauge", "Age of each GPU's latest telemetry sample.");
            foreach (var g in gpus)
                t.Sample("workers_gpu_sample_age_seconds", Math.Round((now - g.SampledAt).TotalSeconds, 1), GpuLabels(g));
            return Results.Text(t.ToString(), "text/plain; version=0.0.4; charset=utf-8");
        });

    private static (string, string)[] GpuLabels(GpuSample g) =>
        [("node", g.Node), ("gpu", g.Index.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("name", g.Name)];
}
