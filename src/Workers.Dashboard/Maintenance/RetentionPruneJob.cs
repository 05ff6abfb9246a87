using Hangfire;
using Workers.Postgres.Queue;

namespace Workers.Dashboard.Maintenance;

/// <summary>
/// Retention pruning (QueueMaintenance: old attempts, stopped workers' rows, old throughput minutes)
/// as a Hangfire recurring job, visible and triggerable on its Recurring page. Worker nodes still
/// prune from their maintenance loop: both go through the same advisory lock and fleet-wide due
/// time, so a prune runs at most once per Retention:PruneIntervalMinutes whoever asks; this job
/// makes it happen while no worker runs too. Not latency-critical, so a dashboard that is down only
/// delays it. Lease rescue is not here: its bound of about two lease lengths stays in the workers.
/// </summary>
public sealed class RetentionPruneJob(QueueMaintenance maintenance)
{
    public const string RecurringId = "workers-retention-prune";

    /// <summary>Every 10 minutes; the prune itself runs only when the fleet's interval is due.</summary>
    public const string Cron = "*/10 * * * *";

    [Queue(HangfireSetup.MaintenanceQueue)]
    [JobDisplayName("Retention prune")]
    [AutomaticRetry(Attempts = 0)] // the next occurrence is the retry
    [DisableConcurrentExecution(timeoutInSeconds: 60)]
    public async Task<string> RunAsync(CancellationToken ct)
    {
        var r = await maintenance.PruneIfDueAsync(ct);
        return r.Status switch
        {
            PruneStatus.Pruned => $"pruned {r.AttemptsDeleted} attempts and {r.WorkersDeleted} worker rows in {r.Batches} batches{(r.MoreLeft ? "; more left for the next run" : "")}",
            PruneStatus.Locked => "another node is pruning",
            _ => "not due: the fleet pruned within Retention:PruneIntervalMinutes",
        };
    }
}
