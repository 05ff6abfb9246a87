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
/// Server-rendered pages: plain HTML, every value HTML-encoded; forms carry the antiforgery token
/// and a <c>return</c> path; no inline script (the CSP forbids it): /dashboard.js refreshes the
/// overview. Each page lives in its own file; this one holds the shared head, nav and helpers.
/// </summary>
public static class HtmlPages
{
    /// <summary>The nav bar, in order: every page shows it (the enqueue page through <see cref="Head"/> too).</summary>
    internal static readonly (string Href, string Text)[] NavLinks =
    [
        ("/", "Overview"), ("/enqueue", "Enqueue"), ("/shards", "Shards"), ("/failures", "Failures"), ("/fleet", "Fleet"), ("/audit", "Audit"),
    ];

    public static void Map(IEndpointRouteBuilder app)
    {
        OverviewPage.Map(app);
        ShardPages.Map(app);
        FailuresPage.Map(app);
        FleetPage.Map(app);
        AuditPage.Map(app);
        app.MapGet("/dashboard.js", () => Results.Text(DashboardScript.Text, "text/javascript; charset=utf-8"));
    }

    /// <summary>Opens a page: doctype, title, the shared style sheet and the nav bar. The caller closes with <c>&lt;/body&gt;&lt;/html&gt;</c>.</summary>
    internal static void Head(StringBuilder h, string title)
    {
        h.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">")
            .Append("<title>").Append(E(title)).Append(" - Workers</title><style>").Append(Css).Append("</style></head><body><header><a class=\"brand\" href=\"/\">Workers</a><nav>");
        foreach (var (href, text) in NavLinks) h.Append($"<a href=\"{href}\">{text}</a>");
        h.Append("</nav></header>");
    }

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
    internal static IResult ErrorPage(int status, string title, string message)
    {
        var h = new StringBuilder();
        Head(h, title);
        h.Append("<h1>").Append(E(title)).Append("</h1><p class=\"error\" id=\"error\">").Append(E(message)).Append("</p>");
        return Html(h, status);
    }

    /// <summary>Runs a page, answering a request it cannot serve (unknown corpus, bad parameter) with an HTML error page instead of JSON.</summary>
    internal static async Task<IResult> Guard(Func<Task<IResult>> page)
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

    /// <summary>Closes the page opened by <see cref="Head"/> and answers it with <paramref name="status"/>.</summary>
    internal static IResult Html(StringBuilder h, int status = StatusCodes.Status200OK) =>
        Results.Content(h.Append("</body></html>").ToString(), "text/html; charset=utf-8", statusCode: status);

    /// <summary>The path and query of this request, as the <c>return</c> of its forms.</summary>
    internal static string Here(HttpContext ctx) => ctx.Request.Path + ctx.Request.QueryString.ToString();

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
        "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}"
        + "header{display:flex;gap:2em;align-items:center;background:#263238;padding:.6em 1.5em}"
        + "header a{color:#eceff1;text-decoration:none}.brand{font-weight:bold;font-size:1.2em}nav a{margin-right:1.2em}nav a:hover{text-decoration:underline}"
        + "body>*:not(header){margin-left:1.5em;margin-right:1.5em}"
        + "h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}"
        + "table{border-collapse:collapse;background:#fff}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#eceff1}"
        + "td.num{text-align:right}.err{color:#b00020;max-width:40em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}"
        + "[hidden]{display:none!important}form{display:inline}button{cursor:pointer}progress{width:10em}pre{white-space:pre-wrap;max-width:70em;max-height:30em;overflow:auto;background:#f4f4f4;padding:.5em}"
        + ".warning{background:#ffebee;color:#b00020;border:1px solid #b00020;padding:.5em 1em;font-weight:bold}"
        + "tr.gpu-on-cpu td{background:#ffcdd2;color:#b00020}tr.crash-looping td{background:#fff3e0;color:#bf360c;font-weight:bold}"
        + ".error{color:#b00020}.muted{color:#777}svg#throughput-chart{background:#fff;border:1px solid #ddd}"
        + ".filters label{margin-right:.8em}dl.fields{display:grid;grid-template-columns:max-content auto;gap:2px 1em}dl.fields dt{font-weight:bold}dl.fields dd{margin:0}";
}
