using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;

namespace Workers.Dashboard.Security;

/// <summary>
/// Every request passes here, after <see cref="RequestGuardMiddleware"/>:
/// 1. Who: valid HTTP Basic credentials make the user; a bad pair is 401; too many bad pairs from one
///    client or for one user name are 429 with Retry-After (<see cref="LoginThrottle"/>, never for loopback). Without credentials a
///    loopback request is the <c>local</c> admin (unless <see cref="DashboardOptions.LocalRequiresCredentials"/>);
///    any other request is 403 when no users are configured, 401 (a challenge) otherwise.
/// 2. What: a POST needs the admin role (403 for readonly; except <see cref="ReadOnlyPosts"/>, which
///    only read) and a valid antiforgery token (400):
///    the cookie from GET /api/antiforgery or a page, plus the token in the X-CSRF-TOKEN header or
///    the __RequestVerificationToken form field. The token is bound to the user.
/// </summary>
public sealed class DashboardAccessMiddleware(RequestDelegate next, DashboardOptions options, CredentialChecker credentials, LoginThrottle throttle,
    IAntiforgery antiforgery)
{
    public const string LocalUser = "local";
    public const string AuthenticationType = "WorkersDashboard";

    /// <summary>POSTs that change nothing, open to the readonly role: Hangfire's dashboard polls its counters with POST /stats.</summary>
    public static readonly IReadOnlySet<string> ReadOnlyPosts = new HashSet<string>(StringComparer.Ordinal) { "/stats" };

    public async Task InvokeAsync(HttpContext ctx)
    {
        var remote = ctx.Connection.RemoteIpAddress;
        if (remote is { IsIPv4MappedToIPv6: true }) remote = remote.MapToIPv4();
        // No address (an in-process host) counts as remote: fail closed.
        var isLocal = remote is not null && IPAddress.IsLoopback(remote);

        string name, role;
        if (AuthenticationHeaderValue.TryParse(ctx.Request.Headers.Authorization, out var auth)
            && string.Equals(auth.Scheme, "Basic", StringComparison.OrdinalIgnoreCase))
        {
            if (!credentials.AnyUsers)
            {
                await Refuse(ctx, StatusCodes.Status403Forbidden,
                    "Credentials were sent but no Dashboard:Users are configured. " + NoUsersHint);
                return;
            }
            var pair = Decode(auth.Parameter);
            var client = remote?.ToString() ?? "unknown";
            // Loopback is never throttled: an administrator on this machine can always get in.
            if (!isLocal && pair is var (tried, _) && throttle.TryBegin(client, tried) is { } wait)
            {
                var seconds = (int)Math.Ceiling(wait.TotalSeconds);
                ctx.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await Refuse(ctx, StatusCodes.Status429TooManyRequests,
                    $"Too many failed sign-ins from {client} or as this user: try again in {seconds} s. " +
                    "Sign-ins from this machine (loopback) are never throttled.");
                return;
            }
            var user = pair is var (n, p) ? credentials.Check(n, p) : null;
            if (user is null)
            {
                await Challenge(ctx, "Wrong user name or password.");
                return;
            }
            if (!isLocal) throttle.Succeeded(client, user.Name);
            (name, role) = (user.Name, user.Role);
        }
        else if (isLocal && !options.LocalRequiresCredentials)
        {
            (name, role) = (LocalUser, DashboardRoles.Admin);
        }
        else if (!credentials.AnyUsers)
        {
            await Refuse(ctx, StatusCodes.Status403Forbidden,
                $"Remote access is refused: this dashboard answers requests from this machine (loopback) only, and this request came from {remote?.ToString() ?? "an unknown address"}. "
                + NoUsersHint);
            return;
        }
        else
        {
            await Challenge(ctx, "Authentication required: sign in with a Dashboard:Users name and password (HTTP Basic).");
            return;
        }

        ctx.User = new ClaimsPrincipal(new ClaimsIdentity(
            [new Claim(ClaimTypes.Name, name), new Claim(ClaimTypes.NameIdentifier, name), new Claim(ClaimTypes.Role, role)],
            AuthenticationType, ClaimTypes.Name, ClaimTypes.Role));

        if (!HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsHead(ctx.Request.Method))
        {
            if (role != DashboardRoles.Admin && !ReadOnlyPosts.Contains(ctx.Request.Path.Value ?? ""))
            {
                await Refuse(ctx, StatusCodes.Status403Forbidden, $"User '{name}' has the {role} role and cannot change anything; ask for an admin account.");
                return;
            }
            try
            {
                await antiforgery.ValidateRequestAsync(ctx);
            }
            catch (AntiforgeryValidationException)
            {
                await Refuse(ctx, StatusCodes.Status400BadRequest,
                    "Antiforgery token missing or invalid. GET /api/antiforgery (keeping its cookie) and send its token in the X-CSRF-TOKEN header, or reload the page.");
                return;
            }
        }
        await next(ctx);
    }

    private const string NoUsersHint =
        "To allow access from other machines, add Dashboard:Users entries (Name, Role admin|readonly, PasswordHash from `workers serve --hash-password`) and serve over HTTPS or a trusted network.";

    private static (string Name, string Password)? Decode(string? parameter)
    {
        if (string.IsNullOrEmpty(parameter)) return null;
        try
        {
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(parameter));
            var colon = text.IndexOf(':');
            return colon <= 0 ? null : (text[..colon], text[(colon + 1)..]);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static Task Challenge(HttpContext ctx, string message)
    {
        ctx.Response.Headers.WWWAuthenticate = "Basic realm=\"workers\", charset=\"UTF-8\"";
        return Refuse(ctx, StatusCodes.Status401Unauthorized, message);
    }

    private static Task Refuse(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        return ctx.Response.WriteAsync(message + "\n");
    }
}
