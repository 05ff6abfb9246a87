using Hangfire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Prometheus;
using Workers.Dashboard.Api;
using Workers.Postgres.Dashboard;
using Workers.Postgres.Fleet;

namespace Workers.Dashboard.Metrics;

/// <summary>
/// GET /metrics, Prometheus text (prometheus-net) with the <c>workers_</c> prefix. Cost per scrape:
/// one pass over shards grouped by state (O(shards), ~10 ms at 54,000), the corpora table, the
/// recent-rate window through the partial index shards_succeeded_finished, the small workers,
/// gpu_telemetry and paused_queues tables, and a sum over throughput_minutes (at most
/// Retention:ThroughputDays of minutes: 43,200 rows at the default, a few ms). Nothing scans
/// shard_items, segments or attempts. Hangfire's job counts come from its monitoring API's
/// statistics (counts over its job table by state and its small server/set tables; the dashboard's
/// own jobs only, never shards).
/// Every figure is read from the database at scrape time, so each scrape fills a registry of its
/// own: nothing is kept in this process, and a GPU or state that is gone leaves no stale series.
/// </summary>
public static class MetricsEndpoint
{
    public static void Map(IEndpointRouteBuilder app) =>
        app.MapGet("/metrics", async (HttpContext ctx, DashboardReader reader, HistoryReader history, WorkerRegistry registry, DashboardHost host,
            JobStorage jobs, CancellationToken ct) =>
        {
            var m = await reader.MetricsAsync(ct);
            var totals = await history.TotalsAsync(ct);
            var claims = await registry.ClaimLatencyAsync(ct);
            var now = host.Time.GetUtcNow().UtcDateTime;
            var workers = await registry.ListAsync(ct);
            var gpus = await registry.ListGpusAsync(ct);
            var stale = WorkerRegistry.StaleAfter(host.Queue);
            var hf = jobs.GetMonitoringApi().GetStatistics();

            var scrape = Prometheus.Metrics.NewCustomRegistry();
            var f = Prometheus.Metrics.WithCustomRegistry(scrape);
            Gauge G(string name, string help, params string[] labels) => f.CreateGauge(name, help, labels);
            // A counter read from the database: its lifetime value, set once on this scrape's fresh counter.
            void C(string name, string help, double value) => f.CreateCounter(name, help).IncTo(value);

            var shards = G("workers_shards", "Shards by state.", "state");
            foreach (var (state, n) in m.ShardsByState) shards.WithLabels(state).Set(n);
            G("workers_corpora", "Corpora enqueued.").Set(m.Corpora);
            G("workers_audio_enqueued_seconds", "Audio seconds enqueued, all corpora.").Set(m.EnqueuedSeconds);
            G("workers_audio_processed_seconds",
                "Audio seconds processed: succeeded shards plus running shards' reported progress (drops when shards are re-run).").Set(m.ProcessedSeconds);
            G("workers_throughput_audio_seconds_per_second",
                    $"Audio seconds of shards that succeeded in the last {DashboardReader.RateWindow.TotalMinutes:0} minutes, per wall-clock second.")
                .Set(m.RecentAudioSeconds / DashboardReader.RateWindow.TotalSeconds);
            // Lifetime counters from throughput_minutes (+ the archive row the retention prune folds into): they only grow.
            C("workers_audio_processed_seconds_total",
                "Audio seconds of shards that succeeded, counted at each success (a re-run shard counts again when it succeeds again; never drops).",
                totals.AudioSeconds);
            C("workers_shards_succeeded_total", "Shard completions (successes), lifetime.", totals.ShardsSucceeded);
            C("workers_attempts_failed_total", "Shard attempts that failed (reported failures and expired leases), lifetime.", totals.AttemptsFailed);

            // Claim latency, as each worker reports it with its registry heartbeat, summed over every registry row: a
            // summary's _sum and _count as two counters (prometheus-net computes summaries itself; these come from the
            // database). They step down when the retention prune deletes stopped workers' rows (a counter reset).
            C("workers_claim_latency_seconds_sum", "Duration of the workers' claim statements, summed (one claim call each, found a shard or not).", claims.Seconds);
            C("workers_claim_latency_seconds_count", "Claim calls of the workers, counted.", claims.Claims);
            if (claims.MaxMs is { } maxMs)
                G("workers_claim_latency_max_seconds", "Slowest claim of each running worker's latest heartbeat interval that had claims, the maximum over the fleet.")
                    .Set(maxMs / 1000);
            if (claims.LastMs is { } lastMs)
                G("workers_claim_latency_last_seconds", "Latest claim of any running worker, the maximum over the fleet.").Set(lastMs / 1000);

            G("workers_paused_queues", "Queues paused from the dashboard.").Set(m.PausedQueues);

            var byState = G("workers_workers", "Worker processes by state (stale: running but no heartbeat for 3 heartbeat periods; stopped: within the last hour).", "state");
            foreach (var state in new[] { "running", "stale", "stopped", "crash_looping" })
                byState.WithLabels(state).Set(workers.Count(w => w.StateAt(stale) == state));
            // Issue 11: the queue runs on the database's clock, so a wrong node clock is harmless to it, but worth seeing.
            var offset = G("workers_clock_offset_seconds",
                $"Each running worker's clock minus the database's at its latest heartbeat (warned about beyond {host.Queue.ClockSkewWarnSeconds:0.###} s).",
                "worker", "node");
            foreach (var w in workers.Where(w => w.State == "running" && w.ClockOffsetMs is not null))
                offset.WithLabels(w.Id, w.Node).Set(w.ClockOffsetMs!.Value / 1000);
            G("workers_gpu_slots_on_cpu", "Running workers assigned a GPU whose inference runs on CPU.").Set(workers.Count(ApiEndpoints.GpuSlotOnCpu));

            string[] gpu = ["node", "gpu", "name"];
            var util = G("workers_gpu_utilization_percent", "GPU utilisation, latest sample per GPU.", gpu);
            var used = G("workers_gpu_memory_used_bytes", "GPU memory in use, latest sample per GPU.", gpu);
            var total = G("workers_gpu_memory_total_bytes", "GPU memory, total.", gpu);
            var age = G("workers_gpu_sample_age_seconds", "Age of each GPU's latest telemetry sample.", gpu);
            foreach (var g in gpus)
            {
                string[] l = [g.Node, g.Index.ToString(System.Globalization.CultureInfo.InvariantCulture), g.Name];
                if (g.UtilizationPercent is { } u) util.WithLabels(l).Set(u);
                if (g.MemoryUsedMb is { } mu) used.WithLabels(l).Set(mu * 1024 * 1024);
                if (g.MemoryTotalMb is { } mt) total.WithLabels(l).Set(mt * 1024 * 1024);
                age.WithLabels(l).Set(Math.Round((now - g.SampledAt).TotalSeconds, 1));
            }

            var hfJobs = G("workers_hangfire_jobs", "Hangfire jobs (dashboard enqueue jobs and maintenance; never shards) by state.", "state");
            foreach (var (state, n) in new[] { ("enqueued", hf.Enqueued), ("scheduled", hf.Scheduled), ("processing", hf.Processing),
                         ("succeeded", hf.Succeeded), ("failed", hf.Failed), ("deleted", hf.Deleted) })
                hfJobs.WithLabels(state).Set(n);
            G("workers_hangfire_servers", "Hangfire servers with a recent heartbeat (the `workers serve` processes that run one).").Set(hf.Servers);
            G("workers_hangfire_recurring_jobs", "Hangfire recurring jobs.").Set(hf.Recurring);

            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await scrape.CollectAndExportAsTextAsync(ctx.Response.Body, ct);
        });
}
