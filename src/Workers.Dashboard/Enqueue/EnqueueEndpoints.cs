using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Workers.Dashboard.Api;
using Workers.Dashboard.Pages;
using Workers.Postgres.Dashboard;
using static Workers.Dashboard.Pages.HtmlPages;

namespace Workers.Dashboard.Enqueue;

/// <summary>
/// <c>GET /enqueue</c> (the form, and the newest enqueue jobs with their progress), <c>POST /enqueue</c>
/// (preview, or with <c>confirm=1</c> a Hangfire background job, <see cref="EnqueueJob"/>, and 303 to
/// that job's page) and <c>POST /api/enqueue</c> (JSON, synchronous as before). Admin role and
/// antiforgery token are checked by DashboardAccessMiddleware like every POST.
/// </summary>
public static class EnqueueEndpoints
{
    /// <summary>Failed files listed in a preview (the count is always exact).</summary>
    public const int FailuresListed = 100;

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/api/enqueue", async (HttpContext ctx, DashboardEnqueue enqueue, AuditLog audit, CancellationToken ct) =>
        {
            if (!enqueue.Enabled) throw new ApiException(403, DashboardEnqueue.OffMessage);
            var (input, dryRun) = await ReadJsonAsync(ctx.Request, ct);
            if (dryRun) return Results.Json(Json(await enqueue.PreviewAsync(input, ct)), DashboardApp.Json);
            // The JSON API stays synchronous (its callers wait for the corpus id), bounded by Corpus:ScanTimeoutSeconds.
            var done = await enqueue.ConfirmAsync(input, ApiEndpoints.ActorOf(ctx), audit, enqueue.Options.ScanTimeout, null, ct);
            return Results.Json(Json(done), DashboardApp.Json, statusCode: StatusCodes.Status201Created);
        });
    }

    /// <summary>The page inside the Hangfire Dashboard: GET shows the form, POST previews or (confirm=1) starts the job.</summary>
    public static async Task<PageBody> LoadAsync(HttpContext ctx, Match route, CancellationToken ct)
    {
        var enqueue = ctx.RequestServices.GetRequiredService<DashboardEnqueue>();
        var af = ctx.RequestServices.GetRequiredService<IAntiforgery>();
        var jobs = ctx.RequestServices.GetRequiredService<EnqueueJobs>();
        if (HttpMethods.IsGet(ctx.Request.Method) || HttpMethods.IsHead(ctx.Request.Method))
            return Page(ctx, enqueue, af, jobs, new EnqueueInput(null, null), null, null, StatusCodes.Status200OK);
        if (!HttpMethods.IsPost(ctx.Request.Method))
            return ErrorPage(StatusCodes.Status405MethodNotAllowed, "Method not allowed", $"{ctx.Request.Method} is not served here; the form GETs and POSTs /enqueue.");
        if (!enqueue.Enabled) return Page(ctx, enqueue, af, jobs, new EnqueueInput(null, null), null, null, StatusCodes.Status403Forbidden);
        var form = await ctx.Request.ReadFormAsync(ct);
        var input = new EnqueueInput(Field(form, "path"), Field(form, "name"));
        try
        {
            input = FromForm(form);
            if (Field(form, "confirm") == "1")
            {
                // Checks that are instant (path confined, settings valid, name free) answer here; the scan,
                // probe, plan and write run as the job, which checks them again when it runs.
                var checkedInput = await enqueue.CheckAsync(input, ct);
                var jobId = jobs.Start(checkedInput, ApiEndpoints.ActorOf(ctx));
                return PageBody.SeeOther($"{ctx.Request.PathBase}/jobs/details/{Uri.EscapeDataString(jobId)}");
            }
            var preview = await enqueue.PreviewAsync(input, ct);
            return Page(ctx, enqueue, af, jobs, preview.Input, preview, null, StatusCodes.Status200OK);
        }
        catch (ApiException e)
        {
            return Page(ctx, enqueue, af, jobs, input, null, e.Message, e.Status);
        }
        catch (ArgumentException e)
        {
            return Page(ctx, enqueue, af, jobs, input, null, e.Message, StatusCodes.Status400BadRequest);
        }
    }

    private static object Json(EnqueueOutcome o) => new
    {
        dry_run = o.CorpusId is null,
        corpus_id = o.CorpusId,
        name = o.Name,
        root = o.Folder.RealPath,
        allowed_root = o.Folder.Root,
        files = o.Plan.FileCount,
        failed_files = o.Plan.FailedFiles.Count,
        audio_seconds = o.Plan.AudioSeconds,
        audio_hours = o.Plan.AudioSeconds / 3600,
        shards = o.Plan.ShardCount,
        shard_seconds = o.Plan.Plan.TargetSeconds,
        pipeline = o.Input.Pipeline,
        queue = o.Input.Queue,
        priority = o.Input.Priority,
        failures = o.Plan.FailedFiles.Take(FailuresListed).Select(f => new { path = f.Path, error = f.Reason }),
        fleet_audio_hours_per_minute = o.FleetRate * 60 / 3600,
        // Audio of this corpus / the fleet's rate over the last DashboardReader.RateWindow; null while nothing finished in it.
        estimated_seconds = o.EstimatedSeconds,
    };

    private static async Task<(EnqueueInput Input, bool DryRun)> ReadJsonAsync(HttpRequest request, CancellationToken ct)
    {
        const string Shape = "Send a JSON object: {\"path\": \"FOLDER\", \"name\": \"NAME\", \"shard_minutes\": 30, \"pipeline\": \"vad\", \"queue\": \"default\", \"priority\": 0, \"dry_run\": true}.";
        JsonElement body;
        try { body = (await JsonDocument.ParseAsync(request.Body, cancellationToken: ct)).RootElement; }
        catch (JsonException e) { throw new ApiException(400, $"The body is not valid JSON ({e.Message.Split(" Path:", 2)[0]}). {Shape}"); }
        if (body.ValueKind != JsonValueKind.Object) throw new ApiException(400, "The body must be a JSON object. " + Shape);

        string? Str(string key) => body.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null
            ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw new ApiException(400, $"\"{key}\" must be a string. {Shape}")
            : null;
        double? Num(string key) => body.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null
            ? v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw new ApiException(400, $"\"{key}\" must be a number. {Shape}")
            : null;
        var priority = Num("priority") ?? 0;
        if (priority != Math.Floor(priority) || Math.Abs(priority) > int.MaxValue) throw new ApiException(400, $"\"priority\" must be a whole number (got {priority}).");
        var dryRun = body.TryGetProperty("dry_run", out var d) && d.ValueKind != JsonValueKind.Null
            ? d.ValueKind is JsonValueKind.True or JsonValueKind.False ? d.GetBoolean() : throw new ApiException(400, "\"dry_run\" must be true or false. " + Shape)
            : false;
        return (new EnqueueInput(Str("path"), Str("name"), Num("shard_minutes") ?? 30, Str("pipeline") ?? "vad", Str("queue") ?? "default", (int)priority), dryRun);
    }

    private static EnqueueInput FromForm(IFormCollection form)
    {
        var minutes = Field(form, "shard_minutes") is { } m
            ? double.TryParse(m, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
                : throw new ApiException(400, $"shard_minutes must be a number of minutes, e.g. 30 (got '{m}').")
            : 30;
        var priority = Field(form, "priority") is { } p
            ? int.TryParse(p, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? n
                : throw new ApiException(400, $"priority must be a whole number, e.g. 0 (got '{p}').")
            : 0;
        return new EnqueueInput(Field(form, "path"), Field(form, "name"), minutes, Field(form, "pipeline") ?? "vad", Field(form, "queue") ?? "default", priority);
    }

    private static string? Field(IFormCollection form, string key) => form[key].ToString().Trim() is { Length: > 0 } s ? s : null;

    /// <summary>The form (re-filled), an error, or a preview with the confirm form.</summary>
    private static PageBody Page(HttpContext ctx, DashboardEnqueue enqueue, IAntiforgery af, EnqueueJobs jobs, EnqueueInput input, EnqueueOutcome? preview,
        string? error, int status)
    {
        var h = new StringBuilder();
        Head(h);
        h.Append("<h1 class=\"page-header\">Enqueue a corpus</h1>");
        if (!enqueue.Enabled)
        {
            h.Append("<p id=\"enqueue-off\">").Append(E(DashboardEnqueue.OffMessage)).Append("</p>");
            return Html("Enqueue", h, status);
        }
        var token = af.GetAndStoreTokens(ctx);
        if (error is not null) h.Append("<p id=\"enqueue-error\" class=\"err\" style=\"white-space:normal\">").Append(E(error)).Append("</p>");

        h.Append("<p>Folders under ").Append(E(string.Join(", ", enqueue.Options.AllowedRoots)))
            .Append(" (a relative path starts at the first). Audio files are found recursively; nothing is written until you confirm the preview. ")
            .Append("A JSONL manifest (<code>{\"path\": ..., \"duration\": seconds}</code> a line) under them works too, when every file it lists lies in its folder.</p>");
        h.Append($"<form id=\"enqueue-form\" method=\"post\" action=\"{E(ctx.Request.PathBase)}/enqueue\">");
        Hidden(h, token.FormFieldName, token.RequestToken ?? "");
        Input(h, "path", "folder or .jsonl manifest", input.Path ?? "", 50);
        Input(h, "name", "name (default: the folder's)", input.Name ?? "", 20);
        Input(h, "shard_minutes", "shard minutes", N(input.ShardMinutes, "0.###"), 5);
        Input(h, "pipeline", "pipeline (" + string.Join(", ", enqueue.Pipelines) + ")", input.Pipeline, 10);
        Input(h, "queue", "queue", input.Queue, 10);
        Input(h, "priority", "priority (higher first)", input.Priority.ToString(CultureInfo.InvariantCulture), 5);
        h.Append("<button id=\"preview\">preview</button></form>");

        if (preview is not null)
        {
            var p = preview.Plan;
            h.Append("<h2>Preview of '").Append(E(preview.Name)).Append("' (nothing written yet)</h2>");
            h.Append("<table id=\"preview-result\">")
                .Append($"<tr><th>folder</th><td>{E(preview.Folder.RealPath)}</td></tr>")
                .Append($"<tr><th>files</th><td data-field=\"files\">{p.FileCount}</td></tr>")
                .Append($"<tr><th>audio hours</th><td data-field=\"audio-hours\">{N(p.AudioSeconds / 3600, "0.00")}</td></tr>")
                .Append($"<tr><th>shards</th><td data-field=\"shards\">{p.ShardCount} of about {N(p.Plan.TargetSeconds / 60, "0.##")} min</td></tr>")
                .Append($"<tr><th>failed files</th><td data-field=\"failed-files\">{p.FailedFiles.Count}</td></tr>")
                .Append($"<tr><th>estimated time</th><td data-field=\"estimated-time\">{E(Estimate(preview))}</td></tr></table>");
            if (p.FailedFiles.Count > 0)
            {
                h.Append("<table id=\"preview-failures\"><tr><th>failed file</th><th>why</th></tr>");
                foreach (var f in p.FailedFiles.Take(FailuresListed)) h.Append($"<tr><td>{E(f.Path)}</td><td class=\"err\">{E(f.Reason)}</td></tr>");
                h.Append("</table>");
                if (p.FailedFiles.Count > FailuresListed) h.Append($"<p>... and {p.FailedFiles.Count - FailuresListed} more.</p>");
            }
            h.Append($"<form id=\"confirm-form\" method=\"post\" action=\"{E(ctx.Request.PathBase)}/enqueue\">");
            Hidden(h, token.FormFieldName, token.RequestToken ?? "");
            Hidden(h, "confirm", "1");
            Hidden(h, "path", preview.Input.Path ?? "");
            Hidden(h, "name", preview.Name);
            Hidden(h, "shard_minutes", N(preview.Input.ShardMinutes, "R"));
            Hidden(h, "pipeline", preview.Input.Pipeline);
            Hidden(h, "queue", preview.Input.Queue);
            Hidden(h, "priority", preview.Input.Priority.ToString(CultureInfo.InvariantCulture));
            h.Append("<button id=\"confirm\">enqueue</button> (starts a background job that scans the folder again and writes the corpus; ")
                .Append("follow it on the job's page, or delete the job there to stop it before anything is written)</form>");
        }
        RecentJobs(h, ctx, jobs);
        return Html("Enqueue", h, status);
    }

    /// <summary>The newest enqueue jobs: state, corpus, progress, with links to their Hangfire pages.</summary>
    private static void RecentJobs(StringBuilder h, HttpContext ctx, EnqueueJobs jobs)
    {
        var recent = jobs.Recent();
        h.Append("<h2>Enqueue jobs</h2>");
        if (recent.Count == 0) { h.Append("<p id=\"no-enqueue-jobs\" class=\"muted\">None yet.</p>"); return; }
        h.Append("<table id=\"enqueue-jobs\"><tr><th>job</th><th>state</th><th>corpus</th><th>progress</th><th>when (UTC)</th></tr>");
        foreach (var j in recent)
            h.Append($"<tr data-job=\"{E(j.Id)}\"><td><a href=\"{E(ctx.Request.PathBase)}/jobs/details/{U(j.Id)}\">#{E(j.Id)}</a></td><td data-field=\"state\">{E(j.State)}</td>")
                .Append($"<td>{E(j.Corpus)}</td><td data-field=\"progress\">{E(j.Progress ?? "-")}</td><td>{T(j.At)}</td></tr>");
        h.Append("</table>");
    }

    private static string Estimate(EnqueueOutcome o)
    {
        var window = N(DashboardReader.RateWindow.TotalMinutes, "0");
        if (o.EstimatedSeconds is not { } s) return $"no rate yet: no shard finished in the last {window} min";
        var span = TimeSpan.FromSeconds(s);
        var text = span.TotalHours >= 1 ? $"{(int)span.TotalHours} h {span.Minutes} min" : $"{Math.Max(1, (int)Math.Ceiling(span.TotalMinutes))} min";
        return $"{text} at the fleet's rate of the last {window} min ({N(o.FleetRate * 60 / 3600, "0.###")} audio hours per minute), if it ran alone";
    }

    private static void Input(StringBuilder h, string name, string label, string value, int size) =>
        h.Append($"<label>{E(label)} <input name=\"{name}\" value=\"{E(value)}\" size=\"{size}\"></label> ");

}
