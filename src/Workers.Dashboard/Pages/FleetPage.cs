using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Workers.Dashboard.Api;
using Workers.Postgres.Fleet;
using static Workers.Dashboard.Pages.HtmlPages;

namespace Workers.Dashboard.Pages;

/// <summary>
/// <c>/fleet</c>: nodes, GPUs (latest sample each) and worker slots, from the worker registry (small
/// tables: one row per worker process of the last hour, one per GPU). A GPU slot running on CPU is
/// flagged red, here and on the overview; a crash-looping slot is flagged too.
/// </summary>
internal static class FleetPage
{
    /// <summary>Worker rows rendered at most (a fleet of hundreds of slots fits; a registry flooded by restarts does not flood the page).</summary>
    public const int WorkersShown = 2000;

    public static async Task<PageBody> LoadAsync(HttpContext ctx, Match route, CancellationToken ct)
    {
        var registry = ctx.RequestServices.GetRequiredService<WorkerRegistry>();
        var host = ctx.RequestServices.GetRequiredService<DashboardHost>();
        var now = host.Time.GetUtcNow().UtcDateTime;
        var staleAfter = WorkerRegistry.StaleAfter(host.Queue);
        var workers = await registry.ListAsync(ct);
        var skewWarn = host.Queue.ClockSkewWarn;
        var gpus = await registry.ListGpusAsync(ct);
        var h = new StringBuilder();
        Head(h);
        GpuOnCpuWarning(h, workers);
        h.Append("<h1>Fleet</h1>");
        var crashLooping = workers.Count(w => w.State == "crash_looping");
        if (crashLooping > 0)
            h.Append($"<p class=\"warning\" id=\"crash-looping-warning\">{I(crashLooping)} worker slot(s) are crash-looping: the supervisor gave up restarting them. See the detail column and the node's journal.</p>");

        h.Append("<h2>Nodes</h2>");
        if (workers.Count == 0 && gpus.Count == 0) h.Append("<p>No workers in the last hour. Start one with <code>workers run</code>.</p>");
        else
        {
            h.Append("<table id=\"nodes\"><tr><th>node</th><th>slots running / listed</th><th>GPUs</th><th>newest heartbeat</th><th>shards done</th><th>audio hours done</th></tr>");
            foreach (var node in workers.Select(w => w.Node).Concat(gpus.Select(g => g.Node)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                var ws = workers.Where(w => w.Node == node).ToList();
                var newest = ws.Count > 0 ? ws.Min(w => w.HeartbeatAge) : (TimeSpan?)null;
                h.Append($"<tr data-node=\"{E(node)}\"><td>{E(node)}</td><td>{I(ws.Count(w => w.StateAt(staleAfter) == "running"))} / {I(ws.Count)}</td>")
                    .Append($"<td>{I(gpus.Count(g => g.Node == node))}</td><td>{(newest is { } t ? Duration(t.TotalSeconds) + " ago" : "-")}</td>")
                    .Append($"<td class=\"num\">{I(ws.Sum(w => (long)w.ShardsCompleted))}</td><td class=\"num\">{N(ws.Sum(w => w.AudioSecondsDone) / 3600, "0.00")}</td></tr>");
            }
            h.Append("</table>");
        }

        h.Append("<h2>GPUs</h2>");
        if (gpus.Count == 0) h.Append("<p>No GPU telemetry.</p>");
        else
        {
            h.Append("<table id=\"gpus\"><tr><th>node</th><th>GPU</th><th>name</th><th>utilisation</th><th>memory used / total</th><th>temperature</th><th>sample age</th></tr>");
            foreach (var g in gpus)
                h.Append($"<tr><td>{E(g.Node)}</td><td>{I(g.Index)}</td><td>{E(g.Name)}</td><td class=\"num\">{Opt(g.UtilizationPercent, "0", " %")}</td>")
                    .Append($"<td class=\"num\">{Opt(g.MemoryUsedMb, "0", "")} / {Opt(g.MemoryTotalMb, "0", " MiB")}</td><td class=\"num\">{Opt(g.TemperatureC, "0", " °C")}</td>")
                    .Append($"<td class=\"num\">{N((now - g.SampledAt).TotalSeconds, "0")} s</td></tr>");
            h.Append("</table>");
        }

        h.Append("<h2>Worker slots</h2>");
        if (workers.Count > 0)
        {
            h.Append("<table id=\"workers\"><tr><th>worker</th><th>node</th><th>slot</th><th>GPU</th><th>execution provider</th><th>threads</th><th>state</th>")
                .Append("<th>heartbeat age</th><th>clock offset</th><th>current shard</th><th>shards done</th><th>throughput</th><th>detail</th></tr>");
            foreach (var w in workers.Take(WorkersShown))
            {
                var state = w.StateAt(staleAfter);
                var cls = string.Join(' ', new[] { w.GpuSlotOnCpu ? "gpu-on-cpu" : null, state == "crash_looping" ? "crash-looping" : null }.OfType<string>());
                h.Append(cls.Length > 0 ? $"<tr class=\"{cls}\"" : "<tr").Append($" data-worker=\"{E(w.Id)}\"><td>{E(w.Id)}</td><td>{E(w.Node)}</td><td>{I(w.Slot)}</td>")
                    .Append($"<td>{E(w.GpuIndex is null ? "-" : w.GpuIndex + (w.GpuName is null ? "" : " " + w.GpuName))}</td>")
                    .Append($"<td>{E(w.ExecutionProvider)}{(w.GpuSlotOnCpu ? " <strong>(GPU slot on CPU)</strong>" : "")}</td><td class=\"num\">{I(w.Threads)}</td>")
                    .Append($"<td>{E(state)}</td><td class=\"num\">{N(w.HeartbeatAge.TotalSeconds, "0")} s</td>")
                    // The worker's clock minus the database's (issue 11); the queue runs on the database's clock either way.
                    .Append(w.ClockSkewed(skewWarn) ? "<td class=\"num err clock-skewed\">" : "<td class=\"num\">")
                    .Append($"{(w.ClockOffsetMs is { } ms ? N(ms / 1000, "+0.0;-0.0;0.0") + " s" : "-")}</td>")
                    .Append($"<td>{(w.CurrentShard is { } s ? $"<a href=\"/shards/{I(s)}\">{I(s)}</a>" : "-")}</td><td class=\"num\">{I(w.ShardsCompleted)}</td>")
                    .Append($"<td class=\"num\">{(w.LastRate is { } r ? N(r, "0.0") + "x realtime" : "-")}</td><td class=\"err\">{E(w.Detail)}</td></tr>");
            }
            h.Append("</table>");
            if (workers.Count > WorkersShown) h.Append($"<p class=\"muted\">The first {I(WorkersShown)} of {I(workers.Count)} worker rows are shown.</p>");
        }
        return Html("Fleet", h);
    }

    /// <summary>
    /// The red line at the top of /fleet and the overview when running GPU slots run inference on
    /// CPU (a CUDA provider that failed to load, silently ~50x slower).
    /// </summary>
    internal static void GpuOnCpuWarning(StringBuilder h, IReadOnlyList<WorkerRow> workers)
    {
        var onCpu = workers.Where(ApiEndpoints.GpuSlotOnCpu).ToList();
        if (onCpu.Count == 0) return;
        h.Append($"<p class=\"warning\" id=\"gpu-on-cpu-warning\">{I(onCpu.Count)} GPU slot(s) run inference on CPU (")
            .Append(E(string.Join(", ", onCpu.Take(5).Select(w => w.Id)))).Append(onCpu.Count > 5 ? ", ..." : "")
            .Append("): CUDA did not load for them. Check the CUDA/cuDNN libraries on the node; see <a href=\"/fleet\">Fleet</a>.</p>");
    }

    private static string Opt(double? v, string format, string unit) => v is { } x ? N(x, format) + unit : "-";
}
