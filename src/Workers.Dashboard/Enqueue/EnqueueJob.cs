using Hangfire;
using Hangfire.Server;
using Npgsql;
using Workers.Dashboard.Api;
using Workers.Postgres;
using Workers.Postgres.Dashboard;

namespace Workers.Dashboard.Enqueue;

/// <summary>
/// A confirmed enqueue from the dashboard, as a Hangfire background job on queue
/// <see cref="HangfireSetup.ControlQueue"/>: scan, probe, plan and write the corpus exactly as
/// <see cref="DashboardEnqueue.ConfirmAsync"/> does, with no time limit. Checkpoints:
/// 1. Each phase is written to the job parameter <see cref="ProgressParameter"/> (the Enqueue page shows it).
/// 2. Deleting the job (Hangfire's button) cancels <c>ct</c>; before the commit that writes nothing
///    (the corpus, its files, shards and audit row are one transaction).
/// 3. A transient database error (connection lost or refused, server shutting down or starting,
///    too many connections, serialization failure, deadlock, lock not available) is rethrown as
///    <see cref="TransientDatabaseException"/>, which Hangfire retries after 15 s, 1 min and 5 min; the
///    last failure lands on Hangfire's Failed page with the exception. Any other error (a constraint
///    violation, a bug) fails at once: retrying it would only fail again.
/// 4. A rejected request (path outside the roots, name taken meanwhile, bad settings) fails at once:
///    retrying cannot fix it.
/// </summary>
public sealed class EnqueueJob(DashboardEnqueue enqueue, AuditLog audit)
{
    public const string ProgressParameter = "progress";

    /// <param name="corpus">The corpus name (for the job's display name; <paramref name="input"/> carries it too).</param>
    /// <param name="context">Hangfire's perform context (it passes it; callers pass null).</param>
    [Queue(HangfireSetup.ControlQueue)]
    [JobDisplayName("Enqueue corpus {0}")]
    [AutomaticRetry(Attempts = 3, DelaysInSeconds = [15, 60, 300], OnlyOn = [typeof(TransientDatabaseException)])]
    public async Task<string> RunAsync(string corpus, EnqueueInput input, Actor actor, PerformContext? context, CancellationToken ct)
    {
        var progress = new JobProgress(context);
        EnqueueOutcome done;
        try
        {
            done = await enqueue.ConfirmAsync(input with { Name = corpus }, actor, audit, scanTimeout: null, progress, ct);
        }
        catch (ApiException e)
        {
            throw new EnqueueRejectedException(e.Message);
        }
        catch (Exception e) when (!ct.IsCancellationRequested && IsTransient(e))
        {
            // Nothing was committed (the corpus is one transaction): the retry starts over with a fresh scan.
            throw new TransientDatabaseException(
                $"The database failed while enqueueing '{corpus}' ({e.GetType().Name}: {e.Message.TrimEnd('.')}); nothing was written. " +
                "Hangfire retries the job; if it keeps failing, check the PostgreSQL server and ConnectionStrings:Workers.", e);
        }
        var p = done.Plan;
        var result = $"corpus '{done.Name}' (id {done.CorpusId}): {p.FileCount} files, {p.AudioSeconds / 3600:0.##} h, {p.ShardCount} shards, {p.FailedFiles.Count} failed files";
        progress.Report("done: " + result);
        return result;
    }

    /// <summary>
    /// A database error that may pass by itself: the project's one rule (<see cref="PostgresErrors.IsTransient"/>,
    /// which the workers' retries use too), and the outages the dashboard answers 503 for
    /// (<see cref="PostgresErrors.IsUnavailable"/>).
    /// </summary>
    public static bool IsTransient(Exception e) =>
        PostgresErrors.IsTransient(e) || PostgresErrors.IsUnavailable(e);

    /// <summary>Writes each phase to the job's parameters, where the Enqueue page reads it.</summary>
    private sealed class JobProgress(PerformContext? context) : IProgress<string>
    {
        public void Report(string value) => context?.SetJobParameter(ProgressParameter, value);
    }
}

/// <summary>A transient database error stopped the enqueue job before it committed; Hangfire retries it (the inner exception is the cause).</summary>
public sealed class TransientDatabaseException(string message, Exception inner) : Exception(message, inner);

/// <summary>The enqueue job was refused for a reason a retry cannot fix; the message says what to change.</summary>
public sealed class EnqueueRejectedException(string message) : Exception(message);
