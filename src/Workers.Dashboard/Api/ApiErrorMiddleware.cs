using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Npgsql;
using Workers.Postgres;
using Workers.Dashboard.Pages;
using Workers.Postgres.Corpora;

namespace Workers.Dashboard.Api;

/// <summary>
/// Turns the errors a caller can act on into a status and a message (JSON under /api/, an HTML page
/// elsewhere); anything else is a bug (500, logged). It sits in front of every route, so pages added
/// later (Hangfire's) are covered too:
/// - the database unreachable or shutting down: 503 with Retry-After and a "database unavailable"
///   answer, one warning line in the log (no stack trace): an outage is not a bug;
/// - text PostgreSQL cannot store (NUL in a posted field or JSON body): 400, not logged, so nobody can
///   fill the log by sending it (issue 13).
/// </summary>
public sealed partial class ApiErrorMiddleware(RequestDelegate next, ILogger<ApiErrorMiddleware> log)
{
    /// <summary>What Retry-After says while the database is unavailable.</summary>
    public const int RetryAfterSeconds = 10;

    public async Task InvokeAsync(HttpContext ctx)
    {
        try
        {
            await next(ctx);
        }
        catch (CorpusNotFoundException e) when (!ctx.Response.HasStarted)
        {
            await Write(ctx, StatusCodes.Status404NotFound, e.Message);
        }
        catch (ApiException e) when (!ctx.Response.HasStarted)
        {
            await Write(ctx, e.Status, e.Message);
        }
        catch (ArgumentException e) when (!ctx.Response.HasStarted)
        {
            await Write(ctx, StatusCodes.Status400BadRequest, e.Message);
        }
        catch (PostgresException e) when (!ctx.Response.HasStarted && e.SqlState is PostgresErrorCodes.CharacterNotInRepertoire or PostgresErrorCodes.UntranslatableCharacter)
        {
            await Write(ctx, StatusCodes.Status400BadRequest,
                "A value in the request holds a character the database cannot store (such as NUL). Remove it and retry.");
        }
        catch (Exception e) when (!ctx.Response.HasStarted && PostgresErrors.IsUnavailable(e)) // a failover in progress too
        {
            LogDatabaseUnavailable(log, ctx.Request.Method, ctx.Request.Path, e.GetType().Name, e.Message);
            ctx.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            await Write(ctx, StatusCodes.Status503ServiceUnavailable,
                $"The database is unavailable ({e.Message.TrimEnd('.')}). Nothing was changed; retry in {RetryAfterSeconds} s. " +
                "If it lasts, check the PostgreSQL server (`workers db status` for the local cluster) and ConnectionStrings:Workers.",
                "Database unavailable");
        }
    }

    private static Task Write(HttpContext ctx, int status, string message, string? title = null)
    {
        var headers = ctx.Response.Headers.RetryAfter;
        ctx.Response.Clear();
        if (headers.Count > 0) ctx.Response.Headers.RetryAfter = headers;
        ctx.Response.StatusCode = status;
        if (title is not null && !ctx.Request.Path.StartsWithSegments("/api") && !ctx.Request.Path.StartsWithSegments("/metrics"))
            return HtmlPages.StandaloneErrorAsync(ctx, title, message);
        return ctx.Response.WriteAsJsonAsync(new { error = message }, DashboardApp.Json);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Method} {Path}: database unavailable, answered 503 ({Error}: {Detail})")]
    private static partial void LogDatabaseUnavailable(ILogger logger, string method, string path, string error, string detail);
}

/// <summary>A request that cannot be served as asked, with the status to answer.</summary>
public sealed class ApiException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
