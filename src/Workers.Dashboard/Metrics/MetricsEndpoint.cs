using Hangfire;
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
/// through the partial index shards_succeeded_finished, the small workers, gpu_telemetry and
/// paused_queues tables, and a sum over throughput_minutes (at most Retention:ThroughputDays of
/// minutes: 43,200 rows at the default, a few ms). Nothing scans shard_items, segments or attempts.
/// Hangfire's job counts come from its monitoring API's statistics (counts over its job table by
/// state and its small server/set tables; the dashboard's own jobs only, never shards).
/// </summary>
public static class MetricsEndpoint
{
    public static void Map(IEndpointRouteBuilder app) =>
        app.MapGet("/metrics", async (DashboardReader reader, HistoryReader history, WorkerRegistry registry, DashboardHost host, JobStorage jobs,
            CancellationToken ct) =>
        {
            var m = await reader.MetricsAsync(ct);
            var totals = await history.TotalsAsync(ct);
            var claims = await registry.ClaimLatencyAsync(ct);
            var now = host.Time.GetUtcNow().UtcDateTime;
            var workers = await registry.ListAsync(now - WorkerRegistry.FleetWindow, ct);
            var gpus = await registry.ListGpusAsync(ct);
            var stale = WorkerRegistry.StaleAfter(host.Queue);

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
            // Lifetime counters from throughput_minutes (+ the archive row the retention prune folds into): they only grow.
            t.Family("workers_audio_processed_seconds_total", "counter",
                    "Audio seconds of shards that succeeded, counted at each success (a re-run shard counts again when it succeeds again; never drops).")
                .Sample("workers_audio_processed_seconds_total", totals.AudioSeconds);
            t.Family("workers_shards_succeeded_total", "counter", "Shard completions (successes), lifetime.")
                .Sample("workers_shards_succeeded_total", totals.ShardsSucceeded);
            t.Family("workers_attempts_failed_total", "counter", "Shard attempts that failed (reported failures and expired leases), lifetime.")
                .Sample("workers_attempts_failed_total", totals.AttemptsFailed);

            // Claim latency, as each worker reports it with its registry heartbeat. _count/_sum are summed over every
            // registry row, so they step down when the retention prune deletes stopped workers' rows (a counter reset).
            t.Family("workers_claim_latency_seconds", "summary", "Duration of the workers' claim statements (one claim call each, found a shard or not).")
                .Sample("workers_claim_latency_seconds_sum", claims.Seconds)
                .Sample("workers_claim_latency_seconds_count", claims.Claims);
            t.Family("workers_claim_latency_max_seconds", "gauge",
                "Slowest claim of each running worker's latest heartbeat interval that had claims, the maximum over the fleet.");
            if (claims.MaxMs is { } maxMs) t.Sample("workers_claim_latency_max_seconds", maxMs / 1000);
            t.Family("workers_claim_latency_last_seconds", "gauge", "Latest claim of any running worker, the maximum over the fleet.");
            if (claims.LastMs is { } lastMs) t.Sample("workers_claim_latency_last_seconds", lastMs / 1000);

            t.Family("workers_paused_queues", "gauge", "Queues paused from the dashboard.").Sample("workers_paused_queues", m.PausedQueues);

            t.Family("workers_workers", "gauge", "Worker processes by state (stale: running but no heartbeat for 3 heartbeat periods; stopped: within the last hour).");
            foreach (var state in new[] { "running", "stale", "stopped", "crash_looping" })
                t.Sample("workers_workers", workers.Count(w => w.StateAt(now, stale) == state), ("state", state));
            t.Family("workers_gpu_slots_on_cpu", "gauge", "Running workers assigned a GPU whose inference runs on CPU.")
                .Sample("workers_gpu_slots_on_cpu", workers.Count(ApiEndpoints.GpuSlotOnCpu));

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

            var hf = jobs.GetMonitoringApi().GetStatistics();
            t.Family("workers_hangfire_jobs", "gauge", "Hangfire jobs (dashboard enqueue jobs; never shards) by state.");
            foreach (var (state, n) in new[] { ("enqueued", hf.Enqueued), ("scheduled", hf.Scheduled), ("processing", hf.Processing),
                         ("succeeded", hf.Succeeded), ("failed", hf.Failed), ("deleted", hf.Deleted) })
                t.Sample("workers_hangfire_jobs", n, ("state", state));
            t.Family("workers_hangfire_servers", "gauge", "Hangfire servers with a recent heartbeat (the `workers serve` processes that run one).")
                .Sample("workers_hangfire_servers", hf.Servers);
            t.Family("workers_hangfire_recurring_jobs", "gauge", "Hangfire recurring jobs.").Sample("workers_hangfire_recurring_jobs", hf.Recurring);
            return Results.Text(t.ToString(), "text/plain; version=0.0.4; charset=utf-8");
        });

    private static (string, string)[] GpuLabels(GpuSample g) =>
        [("node", g.Node), ("gpu", g.Index.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("name", g.Name)];
}
