using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Workers.Dashboard.Api;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;
using static Workers.Dashboard.Pages.HtmlPages;

namespace Workers.Dashboard.Pages;

/// <summary><c>/shards</c> (filtered, keyset-paginated list) and <c>/shards/{id}</c> (one shard: items, attempts, failures, segments).</summary>
internal static class ShardPages
{
    /// <summary>Segments listed on a shard page; the count above the list is exact.</summary>
    public const int SegmentsShown = 100;

    /// <summary>The list's filters, in form order (the query parameters ApiEndpoints.ParseFilterAsync reads).</summary>
    private static readonly string[] Filters = ["corpus", "state", "queue", "node", "worker", "file"];

    /// <summary><c>/shards</c>: the filtered list.</summary>
    public static Task<PageBody> ListAsync(HttpContext ctx, Match route, CancellationToken ct) => Guard(async () =>
    {
        var reader = ctx.RequestServices.GetRequiredService<DashboardReader>();
        var corpora = ctx.RequestServices.GetRequiredService<CorpusStatusReader>();
        var af = ctx.RequestServices.GetRequiredService<IAntiforgery>();
        var token = af.GetAndStoreTokens(ctx);
        var q = ctx.Request.Query;
        var filter = await ApiEndpoints.ParseFilterAsync(q, corpora, ct);
        var page = await reader.ShardsAsync(filter, ct);
        var h = new StringBuilder();
        Head(h);
        h.Append("<h1>Shards</h1><form class=\"filters\" method=\"get\" action=\"/shards\">");
        FilterInputs(h, q, Filters);
        h.Append("<button>filter</button></form>");
        h.Append("<table id=\"shards\"><tr><th>shard</th><th>corpus</th><th>queue</th><th>state</th><th>audio s</th><th>items</th><th>attempt</th><th>segments</th><th>last error</th><th></th></tr>");
        var here = Here(ctx);
        foreach (var s in page)
        {
            h.Append($"<tr data-shard=\"{I(s.Id)}\"><td><a href=\"/shards/{I(s.Id)}\">{I(s.Id)}</a></td><td>{E(s.Corpus)}</td><td>{E(s.Queue)}</td><td>{E(s.State)}</td>")
                .Append($"<td class=\"num\">{N(s.AudioSeconds, "0.0")}</td><td class=\"num\">{I(s.ItemCount)}</td><td>{I(s.Attempt)}/{I(s.MaxAttempts)}</td>")
                .Append($"<td class=\"num\">{I(s.Segments)}</td><td class=\"err\">{E(s.LastError)}</td><td>");
            if (Rerunnable(s.State)) Form(h, $"/api/shards/{I(s.Id)}/rerun", "re-run", token, here);
            h.Append("</td></tr>");
        }
        h.Append("</table>");
        if (page.Count == 0) h.Append("<p>No shards match.</p>");
        if (page.Count == filter.Limit)
            h.Append($"<p><a id=\"next\" href=\"{E(WithQuery(ctx, "/shards", "after", I(page[^1].Id)))}\">next page</a></p>");
        return Html("Shards", h);
    });

    /// <summary><c>/shards/{id}</c>: one shard.</summary>
    public static async Task<PageBody> DetailAsync(HttpContext ctx, Match route, CancellationToken ct)
    {
        var id = long.Parse(route.Groups["id"].Value, CultureInfo.InvariantCulture);
        var reader = ctx.RequestServices.GetRequiredService<DashboardReader>();
        var stages = ctx.RequestServices.GetRequiredService<StageReader>();
        var af = ctx.RequestServices.GetRequiredService<IAntiforgery>();
        var d = await reader.ShardAsync(id, ct);
        if (d is null)
            return ErrorPage(StatusCodes.Status404NotFound, "Shard not found", $"There is no shard {id}. Find shards on /shards (filter by corpus, state or file).");
        var token = af.GetAndStoreTokens(ctx);
        var segments = d.SegmentsWritten > 0 ? await reader.ShardSegmentsAsync(id, SegmentsShown, ct) : [];
        var s = d.Shard;
        var h = new StringBuilder();
        Head(h);
        h.Append($"<h1>Shard {I(id)}</h1><dl class=\"fields\" id=\"shard\">");
        Field(h, "corpus", $"<a href=\"/shards?corpus={U(s.Corpus)}\">{E(s.Corpus)}</a> (shard {I(s.Ordinal)} of the corpus)");
        Field(h, "state", $"<strong>{E(s.State)}</strong>");
        Field(h, "queue / priority", $"{E(s.Queue)} / {I(s.Priority)}");
        Field(h, "audio", $"{N(s.AudioSeconds, "0.0")} s in {I(s.ItemCount)} items; processed {N(s.ProcessedSeconds, "0.0")} s");
        Field(h, "attempt", $"{I(s.Attempt)} of {I(s.MaxAttempts)}");
        Field(h, "lease", s.LeaseOwner is null ? "-" : $"{E(s.LeaseOwner)} until {T(d.LeaseExpiresAt)} (heartbeat {T(d.HeartbeatAt)})");
        Field(h, "created / not before", $"{T(d.CreatedAt)} / {T(s.NotBefore)}");
        Field(h, "started / finished", $"{T(s.StartedAt)} / {T(s.FinishedAt)}");
        Field(h, "root", E(d.RootDir));
        if (s.LastError is not null) Field(h, "last error", $"<span class=\"error\">{E(s.LastError)}</span>");
        h.Append("</dl>");
        if (Rerunnable(s.State)) { h.Append("<p>"); Form(h, $"/api/shards/{I(id)}/rerun", "re-run", token, Here(ctx)); h.Append("</p>"); }

        h.Append("<h2>Attempts</h2><table id=\"attempts\"><tr><th>#</th><th>worker</th><th>node</th><th>GPU</th><th>execution provider</th>")
            .Append("<th>started</th><th>finished</th><th>outcome</th><th>error type</th><th>message</th><th>stack</th><th>log tail</th></tr>");
        foreach (var a in d.Attempts)
        {
            h.Append($"<tr><td>{I(a.Attempt)}</td><td><a href=\"/shards?worker={U(a.Worker)}\">{E(a.Worker)}</a></td><td>{E(a.Node)}</td><td>{E(a.Gpu ?? "-")}</td>")
                .Append($"<td>{E(a.ExecutionProvider ?? "-")}</td><td>{T(a.StartedAt)}</td><td>{T(a.FinishedAt)}</td><td>{E(a.Outcome)}</td>")
                .Append($"<td class=\"error\">{E(a.ErrorType)}</td><td class=\"error\">{E(a.ErrorMessage)}</td><td>");
            Details(h, "stack", a.ErrorStack);
            h.Append("</td><td>");
            Details(h, "log", a.LogTail);
            h.Append("</td></tr>");
        }
        h.Append("</table>");
        if (d.Attempts.Count == 0) h.Append("<p>Not attempted yet.</p>");

        h.Append($"<h2>Items</h2><p>{I(s.ItemCount)} items");
        if (d.Items.Count < s.ItemCount) h.Append($", the first {I(d.Items.Count)} listed");
        h.Append(".</p><table id=\"items\"><tr><th>#</th><th>file</th><th>from s</th><th>to s</th></tr>");
        foreach (var i in d.Items)
            h.Append($"<tr><td>{I(i.Ordinal)}</td><td>{E(i.Path)}</td><td class=\"num\">{N(i.StartSeconds, "0.00")}</td><td class=\"num\">{N(i.EndSeconds, "0.00")}</td></tr>");
        h.Append("</table>");

        h.Append("<h2>File failures</h2><table id=\"file-failures\"><tr><th>file</th><th>attempt</th><th>from s</th><th>to s</th><th>error</th></tr>");
        foreach (var f in d.FileFailures)
            h.Append($"<tr><td>{E(f.Path)}</td><td>{I(f.Attempt)}</td><td class=\"num\">{N(f.StartSeconds, "0.00")}</td><td class=\"num\">{N(f.EndSeconds, "0.00")}</td><td class=\"error\">{E(f.Error)}</td></tr>");
        h.Append("</table>");
        if (d.FileFailures.Count == 0) h.Append("<p>None.</p>");

        h.Append($"<h2>Segments</h2><p id=\"segment-count\">{I(d.SegmentsWritten)} segments written");
        if (segments.Count < d.SegmentsWritten) h.Append($", the first {I(segments.Count)} listed");
        h.Append(".</p>");
        if (segments.Count > 0)
        {
            h.Append("<table id=\"segments\"><tr><th>file</th><th>from s</th><th>to s</th></tr>");
            foreach (var g in segments)
                h.Append($"<tr><td>{E(g.Path)}</td><td class=\"num\">{N(g.StartSeconds, "0.000")}</td><td class=\"num\">{N(g.EndSeconds, "0.000")}</td></tr>");
            h.Append("</table>");
        }
        // Model stages' results (issue 15), the first of them.
        var results = d.SegmentsWritten > 0 ? await stages.ShardResultsAsync(id, SegmentsShown, ct) : [];
        if (results.Count > 0)
        {
            h.Append($"<h2>Stage results</h2><p>The first {I(results.Count)}.</p><table id=\"stage-results\"><tr><th>file</th><th>from s</th><th>stage</th><th>result</th></tr>");
            foreach (var r in results)
                h.Append($"<tr><td>{E(r.Path)}</td><td class=\"num\">{N(r.StartSeconds, "0.000")}</td><td>{E(r.Stage)}</td><td><code>{E(Cut(r.ResultJson, 300))}</code></td></tr>");
            h.Append("</table>");
        }
        return Html($"Shard {id}", h);
    }

    internal static bool Rerunnable(string state) => state is "dead" or "succeeded" or "cancelled";

    private static void Field(StringBuilder h, string name, string html) => h.Append("<dt>").Append(E(name)).Append("</dt><dd>").Append(html).Append("</dd>");

    private static void Details(StringBuilder h, string summary, string? text)
    {
        if (string.IsNullOrEmpty(text)) { h.Append('-'); return; }
        h.Append("<details><summary>").Append(E(summary)).Append("</summary><pre>").Append(E(text)).Append("</pre></details>");
    }

    /// <summary>The first <paramref name="max"/> characters and "...", never cutting a character in two: an ASR
    /// result's emoji or CJK extension character is two UTF-16 units, and half of one renders as U+FFFD.</summary>
    internal static string Cut(string s, int max)
    {
        if (s.Length <= max) return s;
        var end = char.IsHighSurrogate(s[max - 1]) ? max - 1 : max;
        return s[..end] + "...";
    }
}
