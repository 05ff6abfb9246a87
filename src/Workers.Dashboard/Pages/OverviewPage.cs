using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Workers.Dashboard.Api;
using Workers.Postgres.Dashboard;
using Workers.Postgres.Fleet;
using static Workers.Dashboard.Pages.HtmlPages;

namespace Workers.Dashboard.Pages;

/// <summary>
/// <c>/</c>: every corpus (progress, shards by state, failed files, ETA, cancel), the queues with
/// pause/resume, the fleet rate and ETA, the throughput chart, and the newest few failed shards
/// (the full list is /failures). Cells carry <c>data-field</c> so /dashboard.js can refresh them.
/// </summary>
internal static class OverviewPage
{
    /// <summary>Dead shards listed here; /failures lists them all, page by page.</summary>
    public const int FailedShardsShown = 10;

    private static readonly string[] States = ["queued", "running", "succeeded", "dead", "cancelled"];

    public static async Task<PageBody> LoadAsync(HttpContext ctx, Match route, CancellationToken ct)
    {
        var reader = ctx.RequestServices.GetRequiredService<DashboardReader>();
        var stages = ctx.RequestServices.GetRequiredService<StageReader>();
        var registry = ctx.RequestServices.GetRequiredService<WorkerRegistry>();
        var af = ctx.RequestServices.GetRequiredService<IAntiforgery>();
        var token = af.GetAndStoreTokens(ctx);
        var corpora = await reader.CorporaAsync(ct);
        var results = await stages.ResultsPerCorpusAsync(ct);
        var unservable = await stages.UnservableAsync(ct);
        var paused = await reader.PausedQueuesAsync(ct);
        var dead = await reader.ShardsAsync(new ShardFilter(State: "dead", Limit: FailedShardsShown), ct);
        var workers = await registry.ListAsync(ct);
        var window = DashboardReader.RateWindow.TotalSeconds;

        var h = new StringBuilder();
        Head(h);
        FleetPage.GpuOnCpuWarning(h, workers);
        h.Append("<h1 class=\"page-header\">Corpora</h1>");
        if (unservable.Count > 0)
        {
            // Issue 15: a worker claims only shards of the pipelines it has loaded.
            h.Append("<div class=\"warning\" id=\"unservable\"><strong>Shards no running worker can take:</strong> ");
            h.Append(string.Join("; ", unservable.Select(u => $"pipeline <code>{E(u.Pipeline)}</code>: {I(u.Shards)} queued shards ({N(u.AudioSeconds / 3600, "0.00")} h)")));
            h.Append(". Start workers that serve these pipelines (<code>Fleet:Pipelines</code>, and their models in models.json).</div>");
        }

        var fleetRate = corpora.Sum(c => c.RecentAudioSeconds) / window;
        var remaining = corpora.Where(c => !c.Cancelled).Sum(c => c.RemainingSeconds);
        h.Append("<p>Fleet rate: <span id=\"rate\">").Append(N(fleetRate * 60 / 3600, "0.000")).Append("</span> audio hours per minute (last ")
            .Append(N(DashboardReader.RateWindow.TotalMinutes, "0")).Append(" min). ETA for all corpora: <span id=\"fleet-eta\">")
            .Append(remaining <= 0 ? "done" : fleetRate > 0 ? Duration(remaining / fleetRate) : "-").Append("</span>.</p>");

        h.Append("<h2>Corpora</h2><p id=\"new-corpora\" class=\"muted\" hidden></p>");
        if (corpora.Count == 0) h.Append("<p>No corpora yet. <a href=\"/enqueue\">Enqueue one</a>, or run <code>workers enqueue PATH --name NAME</code>.</p>");
        else
        {
            h.Append("<table id=\"corpora\"><tr><th>corpus</th><th>queue</th><th colspan=\"2\">progress</th><th>hours done / total</th>")
                .Append("<th>shards queued / running / succeeded / dead / cancelled</th><th>failed files</th><th>ETA</th><th></th></tr>");
            foreach (var c in corpora)
            {
                var progress = c.Progress;
                var eta = c.EtaSeconds is not { } left ? "-" : left <= 0 ? "done" : Duration(left);
                h.Append($"<tr data-corpus=\"{E(c.Name)}\"><td><a href=\"/shards?corpus={U(c.Name)}\">{E(c.Name)}</a>")
                    .Append(c.Cancelled ? " <span class=\"muted\">(cancelled)</span>" : "")
                    .Append(results.GetValueOrDefault(c.Id) is > 0 and var n ? $" <span class=\"muted\" data-field=\"stage-results\">({E(c.Pipeline)}: {I(n)} stage results)</span>" : "")
                    .Append($"</td><td>{E(c.Queue)}</td>")
                    .Append($"<td><progress data-field=\"bar\" max=\"1\" value=\"{N(progress, "0.####")}\"></progress></td>")
                    .Append($"<td data-field=\"progress\" class=\"num\">{N(progress * 100, "0.0")}%</td>")
                    .Append($"<td data-field=\"hours\" class=\"num\">{N(c.ProcessedSeconds / 3600, "0.00")} / {N(c.AudioSeconds / 3600, "0.00")}</td>")
                    .Append($"<td data-field=\"shards\">{string.Join(" / ", States.Select(s => I(c.ShardsByState.GetValueOrDefault(s))))}</td>")
                    .Append($"<td data-field=\"failed-files\" class=\"num\">{I(c.FailedFiles)}</td><td data-field=\"eta\">{eta}</td><td>");
                if (c.ShardsByState.GetValueOrDefault("dead") > 0)
                    Form(h, $"/api/corpora/{U(c.Name)}/rerun-failed", "re-run failed shards", token, "/corpora");
                if (!c.Cancelled && c.ShardsByState.GetValueOrDefault("queued") + c.ShardsByState.GetValueOrDefault("running") > 0)
                    Form(h, $"/api/corpora/{U(c.Name)}/cancel", "cancel", token, "/corpora");
                h.Append("</td></tr>");
            }
            h.Append("</table>");
        }

        var queues = corpora.Select(c => c.Queue).Concat(paused.Select(p => p.Queue)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (queues.Count > 0)
        {
            h.Append("<h2>Queues</h2><table id=\"queues\"><tr><th>queue</th><th>state</th><th></th></tr>");
            foreach (var q in queues)
            {
                var p = paused.FirstOrDefault(x => x.Queue == q);
                h.Append($"<tr data-queue=\"{E(q)}\"><td>{E(q)}</td><td>")
                    .Append(p is null ? "claiming" : $"<strong>paused</strong> by {E(p.PausedBy)} at {T(p.PausedAt)}").Append("</td><td>");
                if (p is null) Form(h, $"/api/queues/{U(q)}/pause", "pause queue", token, "/corpora");
                else Form(h, $"/api/queues/{U(q)}/resume", "resume queue", token, "/corpora");
                h.Append("</td></tr>");
            }
            h.Append("</table>");
        }

        h.Append("<h2>Throughput, last hour</h2>")
            .Append("<svg id=\"throughput-chart\" width=\"720\" height=\"220\" viewBox=\"0 0 720 220\" role=\"img\" ")
            .Append("aria-label=\"Audio hours processed and shard attempts failed per minute, last 60 minutes\">")
            .Append("<text x=\"20\" y=\"110\" fill=\"#777\">loading history...</text></svg>");

        var deadTotal = corpora.Sum(c => c.ShardsByState.GetValueOrDefault("dead"));
        h.Append("<h2>Failed shards</h2><p>").Append(I(deadTotal)).Append(deadTotal == 1 ? " failed shard" : " failed shards")
            .Append(". <a href=\"/failures\">All failures, with filters</a></p>");
        if (dead.Count > 0)
        {
            h.Append("<table id=\"failed-shards\"><tr><th>shard</th><th>corpus</th><th>attempts</th><th>last error</th><th></th></tr>");
            foreach (var s in dead)
            {
                h.Append($"<tr data-shard=\"{I(s.Id)}\"><td><a href=\"/shards/{I(s.Id)}\">{I(s.Id)}</a></td><td>{E(s.Corpus)}</td><td>{I(s.Attempt)}</td>")
                    .Append($"<td class=\"err\">{E(s.LastError)}</td><td>");
                Form(h, $"/api/shards/{I(s.Id)}/rerun", "re-run", token, "/corpora");
                h.Append("</td></tr>");
            }
            h.Append("</table>");
        }
        h.Append("<script src=\"/dashboard.js\"></script>");
        return Html("Corpora", h);
    }
}
