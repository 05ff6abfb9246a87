using Hangfire;
using Hangfire.Server;
using Microsoft.Extensions.DependencyInjection;
using Workers.Dashboard.Enqueue;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;

namespace Workers.Dashboard.Export;

/// <summary>
/// A corpus export started from the dashboard's Export page, as a Hangfire background job on queue
/// <see cref="HangfireSetup.ControlQueue"/>. Checkpoints:
/// 1. The output goes to <see cref="FolderFor"/>: <c>job-ID</c> under <see cref="DashboardOptions.ExportRoot"/>,
///    named by the job, never by the person asking. An earlier attempt's folder (a retry) is removed first.
/// 2. The lines written so far go to the job parameter <see cref="ProgressParameter"/> (the Export page shows it).
/// 3. Deleting the job (Hangfire's button) cancels <c>ct</c>; the job then removes its folder, so a
///    cancelled export leaves nothing behind. So does any failure.
/// 4. A transient database error is retried as the enqueue job's are (<see cref="TransientDatabaseException"/>,
///    15 s, 1 min, 5 min); a corpus that does not exist, or export being off, fails at once.
/// 5. The finished export is recorded in the audit log (<c>corpus.export</c>).
/// </summary>
public sealed class ExportJob(DashboardHost host, IServiceProvider services, AuditLog audit)
{
    public const string ProgressParameter = "progress";

    /// <summary>The JSONL file in the job's folder.</summary>
    public const string JsonlFile = "segments.jsonl";

    /// <summary>The folder of segment audio in the job's folder.</summary>
    public const string AudioFolder = "audio";

    /// <summary>The folder of export job <paramref name="jobId"/> (digits, Hangfire's id) under <paramref name="root"/>.</summary>
    public static string FolderFor(string root, string jobId) =>
        jobId.Length is > 0 and <= 18 && jobId.All(char.IsAsciiDigit)
            ? Path.Combine(root, "job-" + jobId)
            : throw new ArgumentException($"'{jobId}' is not a Hangfire job id.", nameof(jobId));

    /// <param name="corpus">The corpus name (for the job's display name; <paramref name="request"/> carries it too).</param>
    /// <param name="context">Hangfire's perform context (it passes it; callers pass null).</param>
    [Queue(HangfireSetup.ControlQueue)]
    [JobDisplayName("Export corpus {0}")]
    [AutomaticRetry(Attempts = 3, DelaysInSeconds = [15, 60, 300], OnlyOn = [typeof(TransientDatabaseException)])]
    public async Task<string> RunAsync(string corpus, ExportRequest request, Actor actor, PerformContext? context, CancellationToken ct)
    {
        if (host.Options.ExportRoot is not { Length: > 0 } root) throw new ExportRejectedException(ExportEndpoints.OffMessage);
        var export = services.GetRequiredService<ICorpusExport>();
        var jobId = context?.BackgroundJob.Id ?? throw new InvalidOperationException("ExportJob runs as a Hangfire job: its folder is named after the job.");
        var folder = FolderFor(root, jobId);
        if (Directory.Exists(folder)) Directory.Delete(folder, true);
        Directory.CreateDirectory(folder);
        var progress = new JobProgress(context);
        progress.Report(0);
        ExportResult r;
        try
        {
            r = await export.ExportAsync(request with { Corpus = corpus }, folder, progress, ct);
            var detail = $"{r.Segments} segments, {r.SpeechSeconds / 3600:0.###} h of speech, audio {request.Audio.ToString().ToLowerInvariant()}" +
                         $" ({r.AudioFiles} files), to {folder}" + (r.UnfinishedShards > 0 ? $"; {r.UnfinishedShards} shards not finished were left out" : "");
            await using var conn = await host.Database.OpenConnectionAsync(ct);
            await audit.WriteAsync(conn, null, actor, "corpus.export", "corpus:" + corpus, (int)Math.Min(r.Segments, int.MaxValue), detail, ct);
        }
        catch (Exception e)
        {
            // Cancelled (the job was deleted) or failed: what this job wrote goes, whatever it was.
            // The writers are disposed by now (their using blocks ended inside ExportAsync), so nothing writes into it any more.
            if (Directory.Exists(folder)) Directory.Delete(folder, true);
            if (e is CorpusNotFoundException) throw new ExportRejectedException($"{e.Message.TrimEnd('.')}; nothing was exported. It may have been deleted since the export was started.");
            if (!ct.IsCancellationRequested && EnqueueJob.IsTransient(e))
                throw new TransientDatabaseException(
                    $"The database failed while exporting '{corpus}' ({e.GetType().Name}: {e.Message.TrimEnd('.')}); the partial output was removed. " +
                    "Hangfire retries the job; if it keeps failing, check the PostgreSQL server and ConnectionStrings:Workers.", e);
            throw;
        }
        var result = $"exported {r.Segments} segments ({r.SpeechSeconds / 3600:0.##} h of speech) of '{corpus}' to {Path.Combine(folder, JsonlFile)}" +
                     (request.Audio == ExportAudio.None ? "" : $"; {r.AudioFiles} segment audio files under {Path.Combine(folder, AudioFolder)}, {r.SegmentsWithoutAudio} segments without audio") +
                     (r.UnfinishedShards > 0 ? $"; {r.UnfinishedShards} shards were not finished and are not in it" : "") +
                     (r.Warnings is null ? "" : "; warnings: " + r.Warnings);
        context!.SetJobParameter(ProgressParameter, "done: " + result);
        return result;
    }

    /// <summary>Writes the lines exported so far to the job's parameters, where the Export page reads it.</summary>
    private sealed class JobProgress(PerformContext? context) : IProgress<long>
    {
        public void Report(long value) => context?.SetJobParameter(ProgressParameter, $"{value} segments written");
    }
}

/// <summary>The export job was refused for a reason a retry cannot fix; the message says what to do.</summary>
public sealed class ExportRejectedException(string message) : Exception(message);
