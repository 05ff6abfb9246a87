using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Workers.Dashboard.Api;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;

namespace Workers.Dashboard.Pages;

/// <summary>
/// Server-rendered pages: plain HTML, every value HTML-encoded; forms carry the antiforgery token;
/// /dashboard.js (no inline script, so the CSP can forbid it) refreshes the overview from
/// /api/corpora every 5 s.
/// </summary>
public static class HtmlPages
{
    /// <summary>Dead shards listed on the overview; the shards page lists the rest.</summary>
    public const int FailedShardsShown = 50;

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/", async (HttpContext ctx, DashboardReader reader, IAntiforgery af, CancellationToken ct) =>
        {
            var token = af.GetAndStoreTokens(ctx);
            var corpora = await reader.CorporaAsync(ct);
            var paused = await reader.PausedQueuesAsync(ct);
            var dead = await reader.ShardsAsync(new ShardFilter(State: "dead", Limit: FailedShardsShown), ct);
            var h = new StringBuilder();
            Head(h, "Workers");
            h.Append("<h2>Corpora</h2>");
            if (corpora.Count == 0) h.Append("<p>No corpora yet. Enqueue one: <code>workers enqueue PATH --name NAME</code></p>");
            else
            {
                h.Append("<table><tr><th>corpus</th><th>progress</th><th>hours</th><th>shards q/r/s/dead/c</th><th>failed files</th><th>ETA</th><th></th></tr>");
                foreach (var c in corpora)
                {
                    var progress = c.AudioSeconds > 0 ? Math.Min(1, c.ProcessedSeconds / c.AudioSeconds) : 1;
                    var id = E(c.Id.ToString(CultureInfo.InvariantCulture));
                    h.Append($"<tr data-corpus=\"{E(c.Name)}\"><td><a href=\"/shards?corpus={U(c.Name)}\">{E(c.Name)}</a>")
                        .Append(c.Cancelled ? " (cancelled)" : "").Append("</td>")
                        .Append($"<td><progress id=\"p{id}\" max=\"1\" value=\"{N(progress, "0.####")}\"></progress> <span id=\"pc{id}\">{N(progress * 100, "0.0")}%</span></td>")
                        .Append($"<td id=\"h{id}\">{N(c.ProcessedSeconds / 3600, "0.00")} / {N(c.AudioSeconds / 3600, "0.00")}</td>")
                        .Append($"<td id=\"s{id}\">{string.Join(" / ", new[] { "queued", "running", "succeeded", "dead", "cancelled" }.Select(s => c.ShardsByState.GetValueOrDefault(s)))}</td>")
                        .Append($"<td id=\"f{id}\">{c.FailedFiles}</td><td id=\"e{id}\">-</td><td>");
                    if (c.ShardsByState.GetValueOrDefault("dead") > 0)
                        Form(h, $"/api/corpora/{U(c.Name)}/rerun-failed", "re-run failed shards", token, "/");
                    h.Append("</td></tr>");
                }
                h.Append("</table>");
            }
            h.Append("<p>Fleet rate: <span id=\"rate\">-</span> audio hours per minute (last ")
                .Append(N(DashboardReader.RateWindow.TotalMinutes, "0")).Append(" min). ");
            if (paused.Count > 0) h.Append("Paused queues: ").Append(E(string.Join(", ", paused.Select(p => p.Queue)))).Append('.');
            h.Append("</p><h2>Failed shards</h2>");
            if (dead.Count == 0) h.Append("<p>None.</p>");
            else
            {
                h.Append("<table><tr><th>shard</th><th>corpus</th><th>attempts</th><th>last error</th><th></th></tr>");
                foreach (var s in dead)
                {
                    h.Append($"<tr><td><a href=\"/api/shards/{s.Id}\">{s.Id}</a></td><td>{E(s.Corpus)}</td><td>{s.Attempt}</td><td class=\"err\">{E(s.LastError ?? "")}</td><td>");
                    Form(h, $"/api/shards/{s.Id}/rerun", "re-run", token, "/");
                    h.Append("</td></tr>");
                }
                h.Append("</table>");
                if (dead.Count == FailedShardsShown) h.Append("<p><a href=\"/shards?state=dead\">all failed shards</a></p>");
            }
            h.Append("<script src=\"/dashboard.js\"></script></body></html>");
            return Results.Content(h.ToString(), "text/html; charset=utf-8");
        });

        app.MapGet("/shards", async (HttpContext ctx, DashboardReader reader, CorpusStatusReader corpora, IAntiforgery af, CancellationToken ct) =>
        {
            var token = af.GetAndStoreTokens(ctx);
            var q = ctx.Request.Query;
            var filter = await ApiEndpoints.ParseFilterAsync(q, corpora, ct);
            var page = await reader.ShardsAsync(filter, ct);
            var h = new StringBuilder();
            Head(h, "Shards");
            h.Append("<form method=\"get\" action=\"/shards\">");
            foreach (var k in new[] { "corpus", "state", "queue", "node", "worker", "file" })
                h.Append($"<label>{k} <input name=\"{k}\" value=\"{E(q[k].ToString())}\" size=\"12\"></label> ");
            h.Append("<button>filter</button></form>");
            h.Append("<table><tr><th>shard</th><th>corpus</th><th>queue</th><th>state</th><th>audio s</th><th>items</th><th>attempt</th><th>segments</th><th>last error</th><th></th></tr>");
            var here = ctx.Request.Path + ctx.Request.QueryString.ToString();
            foreach (var s in page)
            {
                h.Append($"<tr><td><a href=\"/api/shards/{s.Id}\">{s.Id}</a></td><td>{E(s.Corpus)}</td><td>{E(s.Queue)}</td><td>{E(s.State)}</td>")
                    .Append($"<td>{N(s.AudioSeconds, "0.0")}</td><td>{s.ItemCount}</td><td>{s.Attempt}/{s.MaxAttempts}</td><td>{s.Segments}</td><td class=\"err\">{E(s.LastError ?? "")}</td><td>");
                if (s.State is "dead" or "succeeded" or "cancelled") Form(h, $"/api/shards/{s.Id}/rerun", "re-run", token, here);
                h.Append("</td></tr>");
            }
            h.Append("</table>");
            if (page.Count == filter.Limit)
            {
                var next = new Dictionary<string, string?>(q.Where(kv => kv.Key != "after").Select(kv => KeyValuePair.Create(kv.Key, (string?)kv.Value.ToString())))
                { ["after"] = page[^1].Id.ToString(CultureInfo.InvariantCulture) };
                h.Append($"<p><a href=\"{E(Microsoft.AspNetCore.WebUtilities.QueryHelpers.AddQueryString("/shards", next))}\">next page</a></p>");
            }
            h.Append("</body></html>");
            return Results.Content(h.ToString(), "text/html; charset=utf-8");
        });

        app.MapGet("/dashboard.js", () => Results.Text(Script, "text/javascript; charset=utf-8"));
    }

    internal static void Head(StringBuilder h, string title) =>
        h.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>").Append(E(title)).Append("</title><style>")
            .Append("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}")
            .Append(".err{color:#b00;max-width:40em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}form{display:inline}progress{width:12em}")
            .Append("</style></head><body><h1><a href=\"/\">Workers</a></h1>");

    private static void Form(StringBuilder h, string action, string label, AntiforgeryTokenSet token, string returnTo) =>
        h.Append($"<form method=\"post\" action=\"{E(action)}\"><input type=\"hidden\" name=\"{E(token.FormFieldName)}\" value=\"{E(token.RequestToken ?? "")}\">")
            .Append($"<input type=\"hidden\" name=\"return\" value=\"{E(returnTo)}\"><button>{E(label)}</button></form>");

    private static string E(string s) => WebUtility.HtmlEncode(s);
    private static string U(string s) => Uri.EscapeDataString(s);
    private static string N(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    private const string Script = """
        // Refreshes the overview's numbers from /api/corpora every 5 s (no reload, no framework).
        function fmtEta(s) {
          if (s === null || s === undefined) return '-';
          if (s <= 0) return 'done';
          const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
          return h > 0 ? h + ' h ' + m + ' min' : m + ' min';
        }
        async function refresh() {
          try {
            const r = await fetch('/api/corpora', { headers: { 'Accept': 'application/json' } });
            if (!r.ok) return;
            const d = await r.json();
            const rate = document.getElementById('rate');
            if (rate) rate.textContent = d.fleet_audio_hours_per_minute.toFixed(3);
            for (const c of d.corpora) {
              const set = (p, v) => { const e = document.getElementById(p + c.id); if (e) e.textContent = v; };
              const bar = document.getElementById('p' + c.id);
              if (bar) bar.value = c.progress;
              set('pc', (c.progress * 100).toFixed(1) + '%');
              set('h', c.processed_hours.toFixed(2) + ' / ' + c.audio_hours.toFixed(2));
              set('s', ['queued', 'running', 'succeeded', 'dead', 'cancelled'].map(s => c.shards[s] || 0).join(' / '));
              set('f', c.failed_files);
              set('e', fmtEta(c.eta_seconds));
            }
          } catch (e) { /* the next poll tries again */ }
        }
        refresh();
        setInterval(refresh, 5000);
        """;
}
