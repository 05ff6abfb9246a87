using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Workers.Dashboard.Security;

/// <summary>
/// The first check of every request, before authentication and before any route (ours, and any a
/// later change mounts, such as Hangfire's under /hangfire), so a page cannot forget it (issue 13):
/// 1. Host: the <c>Host</c> header must name an allowed host (<see cref="HostNames"/>), else 400. A web
///    page whose name re-binds to 127.0.0.1 is same-origin with us in the browser and, on loopback,
///    would be the local admin: it never gets past here, so it never sees an antiforgery token.
/// 2. Input: a path or query holding NUL is 400, answered here, without a stack trace (PostgreSQL
///    cannot store NUL: every lookup with one ended as a 500 and 30 lines of log). Invalid UTF-8
///    needs no check: ASP.NET decodes it to U+FFFD.
/// 3. Cross-site: a state-changing request (not GET, HEAD, OPTIONS or TRACE) that a browser marks as
///    coming from another site (<c>Sec-Fetch-Site</c> other than same-origin or none, or an
///    <c>Origin</c> that is not this host and port) is 403. Clients that send neither header (curl,
///    scripts) pass on to authentication and the antiforgery check.
/// Microsoft's HostFilteringMiddleware was not used: its fixed "Invalid Hostname" page cannot say
/// which host was refused or how to allow it, and it does not check Origin.
/// </summary>
public sealed class RequestGuardMiddleware(RequestDelegate next, HostNames hosts)
{
    public async Task InvokeAsync(HttpContext ctx)
    {
        var req = ctx.Request;
        if (!hosts.IsAllowed(req.Host.Host))
        {
            await Refuse(ctx, StatusCodes.Status400BadRequest,
                $"Host '{Shown(req.Host.Value)}' is not a name this dashboard answers to. Use http://localhost (or 127.0.0.1) on this machine; " +
                "to reach it from other machines by name, add that name to Dashboard:AllowedHosts.");
            return;
        }
        if (BadInput(req) is { } where)
        {
            await Refuse(ctx, StatusCodes.Status400BadRequest,
                $"The request's {where} holds a NUL character (%00), which no name or value here can contain. Remove it and retry.");
            return;
        }
        if (!HttpMethods.IsGet(req.Method) && !HttpMethods.IsHead(req.Method) && !HttpMethods.IsOptions(req.Method) && !HttpMethods.IsTrace(req.Method)
            && CrossSite(req) is { } why)
        {
            await Refuse(ctx, StatusCodes.Status403Forbidden,
                $"Cross-site request refused: {why}. Changes are accepted only from the dashboard's own pages (or from clients that send no Origin, such as curl).");
            return;
        }
        await next(ctx);
    }

    /// <summary>Why a browser says this request comes from another site, or null.</summary>
    private string? CrossSite(HttpRequest req)
    {
        if (req.Headers["Sec-Fetch-Site"] is { Count: > 0 } site && site.ToString() is not ("same-origin" or "none"))
            return $"Sec-Fetch-Site is '{Shown(site.ToString())}'";
        if (req.Headers.Origin is not { Count: > 0 } origin) return null;
        var text = origin.ToString();
        if (!Uri.TryCreate(text, UriKind.Absolute, out var o) || o.Scheme is not ("http" or "https"))
            return $"Origin '{Shown(text)}' is not this dashboard";
        if (!hosts.IsAllowed(o.Host) || !HostNames.SameAuthority(o, req.Host))
            return $"Origin '{Shown(text)}' is not this dashboard ({Shown(req.Host.Value)})";
        return null;
    }

    private static string? BadInput(HttpRequest req)
    {
        if (Bad(req.Path.Value)) return "path";
        foreach (var (k, v) in req.Query)
        {
            if (Bad(k)) return "query";
            foreach (var s in v)
                if (Bad(s)) return $"query parameter '{Shown(k)}'";
        }
        return null;
    }

    private static bool Bad(string? s) => s is not null && s.Contains('\0', StringComparison.Ordinal);

    /// <summary>A header value as shown in a message: printable and short.</summary>
    private static string Shown(StringValues v)
    {
        var s = Workers.Core.Naming.Names.Printable(v.ToString());
        return s.Length > 100 ? s[..100] + "..." : s;
    }

    private static Task Refuse(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        return ctx.Response.WriteAsync(message + "\n");
    }
}
