using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Workers.Dashboard.Api;
using Workers.Dashboard.Pages;
using Workers.Postgres.Corpora;
using static Workers.Dashboard.Pages.HtmlPages;

namespace Workers.Dashboard.Export;

/// <summary>
/// <c>GET /export</c> (the form, and the newest export jobs with their progress and, when done, a link
/// to the JSONL), <c>POST /export</c> (starts an <see cref="ExportJob"/> and answers 303 to its Hangfire
/// page) and <c>GET /export/ID/segments.jsonl</c> (the finished file of export job ID). The person
/// asking picks a corpus and the audio format; the folder is the job's own under
/// <see cref="DashboardOptions.ExportRoot"/>. Admin role and antiforgery token on the POST are checked
/// by DashboardAccessMiddleware like every POST.
/// </summary>
public static class ExportEndpoints
{
    public const string OffMessage =
        "Exporting from the dashboard is off: no Dashboard:ExportRoot is configured. To turn it on, name the folder exports are written under, " +
        "e.g. the environment variable Dashboard__ExportRoot=/data/exports, and restart `workers serve`. Until then use `workers export CORPUS` on a shell.";

    /// <summary>Why export cannot run in this process, or null when it can.</summary>
    internal static string? Unavailable(IServiceProvider services) =>
        services.GetRequiredService<DashboardOptions>().ExportRoot is not { Length: > 0 } ? OffMessage : null;

    public static void Map(IEndpointRouteBuilder app) =>
        app.MapGet("/export/{id:regex(^[0-9]{{1,18}}$)}/" + ExportJob.JsonlFile, (string id, DashboardOptions options) =>
        {
            // The path is built from the job id alone (digits), under the configured root: nothing the request names.
            if (options.ExportRoot is not { Length: > 0 } root) throw new ApiException(404, OffMessage);
            var file = Path.Combine(ExportJob.FolderFor(root, id), ExportJob.JsonlFile);
            if (!File.Exists(file))
                throw new ApiException(404, $"Export job {id} has no finished {ExportJob.JsonlFile} (it is still running, failed, was deleted, or is not an export job). See /export.");
            return Results.File(file, "application/x-ndjson; charset=utf-8", $"export-{id}-{ExportJob.JsonlFile}");
        });

    /// <summary>The page inside the Hangfire Dashboard: GET shows the form, POST starts the job.</summary>
    public static async Task<PageBody> LoadAsync(HttpContext ctx, Match route, CancellationToken ct)
    {
        var services = ctx.RequestServices;
        var af = services.GetRequiredService<IAntiforgery>();
        var jobs = services.GetRequiredService<ExportJobs>();
        if (HttpMethods.IsGet(ctx.Request.Method) || HttpMethods.IsHead(ctx.Request.Method))
            return Page(ctx, af, jobs, null, ExportAudio.None, null, StatusCodes.Status200OK);
        if (!HttpMethods.IsPost(ctx.Request.Method))
            return ErrorPage(StatusCodes.Status405MethodNotAllowed, "Method not allowed", $"{ctx.Request.Method} is not served here; the form GETs and POSTs /export.");
        if (Unavailable(services) is not null) return Page(ctx, af, jobs, null, ExportAudio.None, null, StatusCodes.Status403Forbidden);
        var form = await ctx.Request.ReadFormAsync(ct);
        var corpus = form["corpus"].ToString().Trim();
        var audioText = form["audio"].ToString().Trim();
        var audio = audioText switch
        {
            "" or "none" => ExportAudio.None,
            "wav" => ExportAudio.Wav,
            "flac" => ExportAudio.Flac,
            _ => (ExportAudio?)null,
        };
        if (audio is null)
            return Page(ctx, af, jobs, corpus, ExportAudio.None, $"audio '{audioText}' is not a choice: none, wav or flac.", StatusCodes.Status400BadRequest);
        if (corpus.Length == 0)
            return Page(ctx, af, jobs, corpus, audio.Value, "No corpus given. Type the name of a corpus the Corpora page lists.", StatusCodes.Status400BadRequest);
        try
        {
            await services.GetRequiredService<CorpusStatusReader>().GetCorpusAsync(corpus, ct);
        }
        catch (CorpusNotFoundException e)
        {
            return Page(ctx, af, jobs, corpus, audio.Value, $"{e.Message.TrimEnd('.')}. Type the name of a corpus the Corpora page lists.", StatusCodes.Status404NotFound);
        }
        var jobId = jobs.Start(new ExportRequest(corpus, audio.Value), ApiEndpoints.ActorOf(ctx));
        return PageBody.SeeOther($"{ctx.Request.PathBase}/jobs/details/{Uri.EscapeDataString(jobId)}");
    }

    private static PageBody Page(HttpContext ctx, IAntiforgery af, ExportJobs jobs, string? corpus, ExportAudio audio, string? error, int status)
    {
        var h = new StringBuilder();
        Head(h);
        h.Append("<h1 class=\"page-header\">Export a corpus</h1>");
        if (Unavailable(ctx.RequestServices) is { } off)
        {
            h.Append("<p id=\"export-off\">").Append(E(off)).Append("</p>");
            return Html("Export", h, status);
        }
        var root = ctx.RequestServices.GetRequiredService<DashboardOptions>().ExportRoot;
        var token = af.GetAndStoreTokens(ctx);
        if (error is not null) h.Append("<p id=\"export-error\" class=\"err\" style=\"white-space:normal\">").Append(E(error)).Append("</p>");
        h.Append("<p>The corpus's speech segments (succeeded shards only) as JSONL, one line per segment, as <code>workers export</code> writes them; ")
            .Append("optionally each segment's audio (16 kHz mono) beside it. Each export is a background job writing to its own folder <code>")
            .Append(E(Path.Combine(root, "job-ID"))).Append("</code>; deleting the job stops it and removes that folder.</p>");
        h.Append($"<form id=\"export-form\" method=\"post\" action=\"{E(ctx.Request.PathBase)}/export\">");
        Hidden(h, token.FormFieldName, token.RequestToken ?? "");
        h.Append($"<label>corpus <input name=\"corpus\" value=\"{E(corpus)}\" size=\"30\"></label> ");
        h.Append("<label>segment audio <select name=\"audio\">");
        foreach (var (value, text) in new[] { ("none", "none"), ("wav", "wav"), ("flac", "flac (ffmpeg)") })
            h.Append($"<option value=\"{value}\"{(audio.ToString().Equals(value, StringComparison.OrdinalIgnoreCase) ? " selected" : "")}>{E(text)}</option>");
        h.Append("</select></label> <button id=\"export\">export</button></form>");

        var recent = jobs.Recent();
        h.Append("<h2>Export jobs</h2>");
        if (recent.Count == 0) h.Append("<p id=\"no-export-jobs\" class=\"muted\">None yet.</p>");
        else
        {
            h.Append("<table id=\"export-jobs\"><tr><th>job</th><th>state</th><th>corpus</th><th>progress</th><th>result</th><th>when (UTC)</th></tr>");
            foreach (var j in recent)
            {
                var result = j.State == "Succeeded" && File.Exists(Path.Combine(ExportJob.FolderFor(root, j.Id), ExportJob.JsonlFile))
                    ? $"<a data-field=\"download\" href=\"{E(ctx.Request.PathBase)}/export/{U(j.Id)}/{ExportJob.JsonlFile}\">{ExportJob.JsonlFile}</a> in {E(ExportJob.FolderFor(root, j.Id))}"
                    : "-";
                h.Append($"<tr data-job=\"{E(j.Id)}\"><td><a href=\"{E(ctx.Request.PathBase)}/jobs/details/{U(j.Id)}\">#{E(j.Id)}</a></td><td data-field=\"state\">{E(j.State)}</td>")
                    .Append($"<td>{E(j.Corpus)}</td><td data-field=\"progress\">{E(j.Progress ?? "-")}</td><td>{result}</td><td>{T(j.At)}</td></tr>");
            }
            h.Append("</table>");
        }
        return Html("Export", h, status);
    }
}
