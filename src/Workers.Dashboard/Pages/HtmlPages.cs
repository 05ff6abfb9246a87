using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.WebUtilities;
using Workers.Dashboard.Api;
using Workers.Postgres.Corpora;

namespace Workers.Dashboard.Pages;

/// <summary>
/// Our pages, rendered inside the Hangfire Dashboard's layout (<see cref="HangfirePages"/> routes
/// them and puts them in its navigation menu): plain HTML, every value HTML-encoded; forms carry the
/// antiforgery token and a <c>return</c> path; no inline script (the CSP forbids it): /dashboard.js
/// refreshes the corpora page. Each page lives in its own file as an async loader returning a
/// <see cref="PageBody"/>; this one holds the shared style and helpers.
/// </summary>
public static class HtmlPages
{
    /// <summary>Our entries in Hangfire's navigation menu, in order, after its own (Jobs, Retries, Recurring Jobs, Servers).</summary>
    internal static readonly (string Href, string Text)[] NavLinks =
    [
        ("/corpora", "Corpora"), ("/enqueue", "Enqueue"), ("/export", "Export"), ("/shards", "Shards"), ("/failures", "Failures"), ("/fleet", "Fleet"), ("/audit", "Audit"),
    ];

    /// <summary>The script of the corpora page, served as a file (the CSP forbids inline script).</summary>
    public static void Map(IEndpointRouteBuilder app) =>
        app.MapGet("/dashboard.js", () => Results.Text(DashboardScript.Text, "text/javascript; charset=utf-8"));

    /// <summary>Opens a page's body: our style rules (scoped to <c>.workers-page</c>, so Hangfire's own pages keep theirs). <see cref="Html"/> closes it.</summary>
    internal static void Head(StringBuilder h) => h.Append("<style>").Append(Css).Append("</style><div class=\"workers-page\">");

    /// <summary>A one-button form POSTing to <paramref name="action"/> with the antiforgery token and a path to come back to.</summary>
    internal static void Form(StringBuilder h, string action, string label, AntiforgeryTokenSet token, string returnTo,
        IEnumerable<(string Name, string Value)>? fields = null, string? buttonId = null)
    {
        h.Append($"<form method=\"post\" action=\"{E(action)}\">");
        Hidden(h, token.FormFieldName, token.RequestToken ?? "");
        Hidden(h, "return", returnTo);
        foreach (var (name, value) in fields ?? []) Hidden(h, name, value);
        h.Append(buttonId is null ? "<button>" : $"<button id=\"{E(buttonId)}\">").Append(E(label)).Append("</button></form>");
    }

    internal static void Hidden(StringBuilder h, string name, string value) =>
        h.Append($"<input type=\"hidden\" name=\"{E(name)}\" value=\"{E(value)}\">");

    /// <summary>A GET filter form's text inputs, one per key in order, re-filled from the request's query.</summary>
    internal static void FilterInputs(StringBuilder h, IQueryCollection query, IEnumerable<string> keys)
    {
        foreach (var k in keys)
            h.Append($"<label>{E(k)} <input name=\"{E(k)}\" value=\"{E(query[k].ToString())}\" size=\"12\"></label>");
    }

    /// <summary>A page with a heading and a message, for a status other than 200 (unknown shard, bad parameter).</summary>
    internal static PageBody ErrorPage(int status, string title, string message)
    {
        var h = new StringBuilder();
        Head(h);
        h.Append("<h1 class=\"page-header\">").Append(E(title)).Append("</h1><p class=\"error\" id=\"error\">").Append(E(message)).Append("</p>");
        return Html(title, h, status);
    }

    /// <summary>
    /// An error page of its own, outside Hangfire's layout (which needs its storage): for a request
    /// that failed before or around the page, e.g. the database being unavailable. The caller set the status.
    /// </summary>
    internal static Task StandaloneErrorAsync(HttpContext ctx, string title, string message)
    {
        ctx.Response.ContentType = "text/html; charset=utf-8";
        return ctx.Response.WriteAsync(
            $"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{E(title)} - Workers</title><style>{Css}</style></head>" +
            $"<body><div class=\"workers-page\"><h1>{E(title)}</h1><p class=\"error\" id=\"error\">{E(message)}</p></div></body></html>");
    }

    /// <summary>Runs a page, answering a request it cannot serve (unknown corpus, bad parameter) with an HTML error page instead of JSON.</summary>
    internal static async Task<PageBody> Guard(Func<Task<PageBody>> page)
    {
        try
        {
            return await page();
        }
        catch (CorpusNotFoundException e)
        {
            return ErrorPage(StatusCodes.Status404NotFound, "Not found", e.Message);
        }
        catch (ApiException e)
        {
            return ErrorPage(e.Status, e.Status == StatusCodes.Status404NotFound ? "Not found" : "Bad request", e.Message);
        }
    }

    /// <summary>Closes the body opened by <see cref="Head"/>: the page titled <paramref name="title"/>, answered with <paramref name="status"/>.</summary>
    internal static PageBody Html(string title, StringBuilder h, int status = StatusCodes.Status200OK) =>
        new(title, h.Append("</div>").ToString(), status);

    /// <summary>The path and query of this request, as the <c>return</c> of its forms.</summary>
    internal static string Here(HttpContext ctx) => ctx.Request.PathBase + ctx.Request.Path + ctx.Request.QueryString.ToString();

    /// <summary><paramref name="path"/> with the request's query, <paramref name="key"/> replaced by <paramref name="value"/> (a keyset link).</summary>
    internal static string WithQuery(HttpContext ctx, string path, string key, string value)
    {
        var q = new Dictionary<string, string?>(ctx.Request.Query.Where(kv => kv.Key != key).Select(kv => KeyValuePair.Create(kv.Key, (string?)kv.Value.ToString())))
        { [key] = value };
        return QueryHelpers.AddQueryString(path, q);
    }

    internal static string E(string? s) => WebUtility.HtmlEncode(s ?? "");
    internal static string U(string s) => Uri.EscapeDataString(s);
    internal static string N(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
    internal static string I(long v) => v.ToString(CultureInfo.InvariantCulture);
    internal static string T(DateTime? t) => t is { } v ? v.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "-";

    /// <summary>Seconds as "2 h 5 min", "4 min", "12 s".</summary>
    internal static string Duration(double seconds) =>
        seconds >= 3600 ? $"{I((long)(seconds / 3600))} h {I((long)(seconds % 3600 / 60))} min"
        : seconds >= 60 ? $"{I((long)(seconds / 60))} min"
        : $"{N(seconds, "0")} s";

    private const string Css =
        ".workers-page h1{font-size:1.6em}.workers-page h2{font-size:1.2em;margin-top:1.5em}.workers-page h3{font-size:1.05em}"
        + ".workers-page table{border-collapse:collapse;background:#fff;margin-bottom:.8em}.workers-page td,.workers-page th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}"
        + ".workers-page th{background:#f5f5f5}"
        + ".workers-page td.num{text-align:right}.workers-page .err{color:#b00020;max-width:40em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}"
        + ".workers-page [hidden]{display:none!important}.workers-page form{display:inline}.workers-page button{cursor:pointer}.workers-page progress{width:10em}"
        + ".workers-page pre{white-space:pre-wrap;max-width:70em;max-height:30em;overflow:auto;background:#f4f4f4;padding:.5em}"
        + ".workers-page .warning{background:#ffebee;color:#b00020;border:1px solid #b00020;padding:.5em 1em;font-weight:bold}"
        + ".workers-page tr.gpu-on-cpu td{background:#ffcdd2;color:#b00020}.workers-page tr.crash-looping td{background:#fff3e0;color:#bf360c;font-weight:bold}"
        + ".workers-page .error{color:#b00020}.workers-page .muted{color:#777}svg#throughput-chart{background:#fff;border:1px solid #ddd}"
        + ".workers-page .filters label{margin-right:.8em}.workers-page dl.fields{display:grid;grid-template-columns:max-content auto;gap:2px 1em}"
        + ".workers-page dl.fields dt{font-weight:bold}.workers-page dl.fields dd{margin:0}";
}
