using Microsoft.AspNetCore.Http;
using Workers.Postgres.Corpora;

namespace Workers.Dashboard.Api;

/// <summary>Turns the errors a caller can act on into a status and a JSON message; anything else is a bug (500, logged).</summary>
public sealed class ApiErrorMiddleware(RequestDelegate next)
{
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
    }

    private static Task Write(HttpContext ctx, int status, string message)
    {
        ctx.Response.Clear();
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(new { error = message }, DashboardApp.Json);
    }
}

/// <summary>A request that cannot be served as asked, with the status to answer.</summary>
public sealed class ApiException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
