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

/// <summary>
/// <c>/failures</c>: dead shards under the same filters as /shards (keyset pages of
/// <see cref="ShardsPerPage"/>), each with a re-run button, one button re-running every dead shard the
/// filter matches, and the failed files of each corpus with a button re-running them.
/// </summary>
internal static class FailuresPage
{
    public const int ShardsPerPage = 100;
    /// <summary>Failed files per page when one corpus is chosen.</summary>
    public const int FilesPerPage = 100;
    /// <summary>Without a corpus filter: corpora listed, and failed files shown for each (a link leads to the rest).</summary>
    public const int CorporaShown = 20;
    public const int FilesPerCorpusShown = 10;

    /// <summary>The filters, in form order; each is passed on to POST /api/shards/rerun as a hidden field.</summary>
    private static readonly string[] Filters = ["corpus", "queue", "node", "worker", "file"];

    public static Task<PageBody> LoadAsync(HttpContext ctx, Match route, CancellationToken ct) => Guard(async () =>
    {
        var reader = ctx.RequestServices.GetRequiredService<DashboardReader>();
        var corpora = ctx.RequestServices.GetRequiredService<CorpusStatusReader>();
        var af = ctx.RequestServices.GetRequiredService<IAntiforgery>();
        var token = af.GetAndStoreTokens(ctx);
        var q = ctx.Request.Query;
        if (q.ContainsKey("state"))
            throw new ApiException(StatusCodes.Status400BadRequest, "/failures lists dead shards only; drop 'state', or use /shards?state=... for other states.");
        var filter = (await ApiEndpoints.ParseFilterAsync(q, corpora, ct)) with { State = "dead", Limit = ShardsPerPage };
        var filesAfter = q["files_after"].ToString() is { Length: > 0 } fa
            ? int.TryParse(fa, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
                : throw new ApiException(StatusCodes.Status400BadRequest, $"files_after must be a file index (a whole number), not '{fa}'.")
            : -1;
        var page = await reader.ShardsAsync(filter, ct);
        var here = Here(ctx);
        var set = Filters.Select(k => (Name: k, Value: q[k].ToString())).Where(f => f.Value.Length > 0).ToList();

        var h = new StringBuilder();
        Head(h);
        h.Append("<h1>Failures</h1><form class=\"filters\" id=\"failures-filter\" method=\"get\" action=\"/failures\">");
        FilterInputs(h, q, Filters);
        h.Append("<button>filter</button> <a href=\"/failures\">clear</a></form>");

        h.Append("<h2>Failed (dead) shards</h2>");
        if (page.Count == 0) h.Append("<p id=\"no-dead\">No dead shards").Append(set.Count > 0 ? " match this filter" : "").Append(".</p>");
        else
        {
            h.Append("<p>");
            // With no filter the page says "all of them", so the button asks for exactly that (the API refuses an empty filter otherwise).
            Form(h, "/api/shards/rerun", "re-run all failed", token, here, set.Count == 0 ? [("all", "1")] : set, "rerun-all");
            h.Append(" <span class=\"muted\">re-queues every dead shard matching ")
                .Append(set.Count == 0 ? "no filter (all of them)" : E(string.Join(", ", set.Select(f => $"{f.Name}={f.Value}"))))
                .Append(", not only this page.</span></p>");
            h.Append("<table id=\"dead-shards\"><tr><th>shard</th><th>corpus</th><th>queue</th><th>attempts</th><th>finished</th><th>last error</th><th></th></tr>");
            foreach (var s in page)
            {
                h.Append($"<tr data-shard=\"{I(s.Id)}\"><td><a href=\"/shards/{I(s.Id)}\">{I(s.Id)}</a></td><td>{E(s.Corpus)}</td><td>{E(s.Queue)}</td>")
                    .Append($"<td>{I(s.Attempt)}/{I(s.MaxAttempts)}</td><td>{T(s.FinishedAt)}</td><td class=\"err\">{E(s.LastError)}</td><td>");
                Form(h, $"/api/shards/{I(s.Id)}/rerun", "re-run", token, here);
                h.Append("</td></tr>");
            }
            h.Append("</table>");
            if (page.Count == filter.Limit)
                h.Append($"<p><a id=\"next\" href=\"{E(WithQuery(ctx, "/failures", "after", I(page[^1].Id)))}\">next page</a></p>");
        }

        h.Append("<h2>Failed files</h2>");
        if (filter.CorpusId is { } corpusId)
        {
            var name = q["corpus"].ToString();
            var files = await reader.FailedFilesAsync(corpusId, filesAfter, FilesPerPage, ct);
            FailedFiles(h, name, files, token, here);
            if (files.Count == FilesPerPage)
                h.Append($"<p><a id=\"next-files\" href=\"{E(WithQuery(ctx, "/failures", "files_after", I(files[^1].FileIndex)))}\">more failed files</a></p>");
        }
        else
        {
            var withFailures = await reader.FailedFileCorporaAsync(CorporaShown + 1, ct);
            if (withFailures.Count == 0) h.Append("<p id=\"no-failed-files\">No failed files.</p>");
            foreach (var c in withFailures.Take(CorporaShown))
            {
                var files = await reader.FailedFilesAsync(c, FilesPerCorpusShown, ct);
                FailedFiles(h, c.Corpus, files, token, here, c.FailedFiles);
                if (c.FailedFiles > files.Count)
                    h.Append($"<p><a href=\"/failures?corpus={U(c.Corpus)}\">all {I(c.FailedFiles)} failed files of {E(c.Corpus)}</a></p>");
            }
            if (withFailures.Count > CorporaShown)
                h.Append($"<p class=\"muted\">More corpora have failed files; choose one with the corpus filter.</p>");
        }
        return Html("Failures", h);
    });

    private static void FailedFiles(StringBuilder h, string corpus, IReadOnlyList<FailedFileRow> files, AntiforgeryTokenSet token, string here, int? total = null)
    {
        h.Append($"<h3 data-failed-files=\"{E(corpus)}\">{E(corpus)}");
        if (total is { } t) h.Append($" <span class=\"muted\">({I(t)} failures)</span>");
        h.Append("</h3>");
        if (files.Count == 0) { h.Append("<p>No failed files.</p>"); return; }
        h.Append("<p>");
        Form(h, $"/api/corpora/{U(corpus)}/rerun-failed-files", "re-run failed files", token, here);
        h.Append("</p><table class=\"failed-files\"><tr><th>file</th><th>error</th><th>shard</th></tr>");
        foreach (var f in files)
        {
            h.Append($"<tr><td>{E(f.Path)}</td><td class=\"error\">{E(f.Error)}</td><td>")
                .Append(f.ShardId is { } id ? $"<a href=\"/shards/{I(id)}\">{I(id)}</a> (attempt {I(f.Attempt ?? 0)})" : "at enqueue").Append("</td></tr>");
        }
        h.Append("</table>");
    }
}
