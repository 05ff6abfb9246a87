using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Workers.Dashboard.Api;
using Workers.Postgres.Dashboard;
using static Workers.Dashboard.Pages.HtmlPages;

namespace Workers.Dashboard.Pages;

/// <summary><c>/audit</c>: the audit trail, newest first, <see cref="PageSize"/> rows a page; "older" follows the keyset (<c>before</c> = last id shown).</summary>
internal static class AuditPage
{
    public const int PageSize = 100;

    public static Task<PageBody> LoadAsync(HttpContext ctx, Match route, CancellationToken ct) => Guard(async () =>
    {
        var reader = ctx.RequestServices.GetRequiredService<DashboardReader>();
        var b = ctx.Request.Query["before"].ToString();
        var before = b.Length == 0 ? long.MaxValue
            : long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
            : throw new ApiException(StatusCodes.Status400BadRequest, $"before must be an audit entry id (a whole number), not '{b}'.");
        var page = await reader.AuditAsync(before, PageSize, ct);
        var h = new StringBuilder();
        Head(h);
        h.Append("<h1>Audit</h1>");
        if (page.Count == 0) h.Append(b.Length == 0 ? "<p>No actions yet.</p>" : "<p>No older entries.</p>");
        else
        {
            h.Append("<table id=\"audit\"><tr><th>#</th><th>when (UTC)</th><th>who</th><th>from</th><th>action</th><th>target</th><th>rows</th><th>detail</th></tr>");
            foreach (var a in page)
                h.Append($"<tr data-audit=\"{I(a.Id)}\"><td>{I(a.Id)}</td><td>{T(a.At)}</td><td>{E(a.Actor)}</td><td>{E(a.RemoteAddress ?? "-")}</td>")
                    .Append($"<td>{E(a.Action)}</td><td>{Target(a.Target)}</td><td class=\"num\">{I(a.RowsAffected)}</td><td>{E(a.Detail)}</td></tr>");
            h.Append("</table>");
        }
        h.Append("<p>");
        if (b.Length > 0) h.Append("<a href=\"/audit\">newest</a> ");
        if (page.Count == PageSize) h.Append($"<a id=\"older\" href=\"/audit?before={I(page[^1].Id)}\">older</a>");
        h.Append("</p>");
        return Html("Audit", h);
    });

    /// <summary>A shard target links to its page; anything else is plain text.</summary>
    private static string Target(string target) =>
        target.StartsWith("shard:", StringComparison.Ordinal) && long.TryParse(target.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? $"<a href=\"/shards/{I(id)}\">{E(target)}</a>"
            : E(target);
}
