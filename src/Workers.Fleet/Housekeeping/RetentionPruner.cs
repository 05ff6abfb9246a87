using Workers.Core.Signals;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Workers.Core.Options;
using Workers.Postgres.Queue;

namespace Workers.Fleet.Housekeeping;

/// <summary>
/// Retention pruning in worker processes: looks every <see cref="CheckInterval"/> (1 minute) and
/// prunes when the fleet has not pruned for <c>Retention:PruneIntervalMinutes</c> (default 60;
/// recorded in the database, under an advisory try-lock: <see cref="QueueMaintenance.PruneIfDueAsync"/>),
/// so however many workers run, one prunes per interval. <c>workers serve</c> does not host this
/// service: there the Hangfire recurring job <c>workers-retention-prune</c> calls the same prune
/// (one scheduler per process). A failed prune is logged and tried at the next look.
/// </summary>
public sealed partial class RetentionPruner(
    IWorkersDatabase database,
    IOptions<RetentionOptions> options,
    TimeProvider time,
    ILogger<RetentionPruner> logger,
    RetentionPruner.Signals? signals = null) : BackgroundService
{
    /// <summary>How often this process asks whether a prune is due (cheap when not: at most one query per prune interval).</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromMinutes(1);

    /// <summary>What a test can wait for: each look, with what it did.</summary>
    public sealed class Signals
    {
        public TestSignal<PruneResult> Looked { get; } = new();
    }

    // Read when it runs, not when built: the host builds its services before it validates options.
    private RetentionOptions Options => options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var maintenance = new QueueMaintenance(await database.WhenOpenAsync(stoppingToken), Options, time);
            using var timer = new PeriodicTimer(CheckInterval, time);
            do await PruneOnceAsync(maintenance, stoppingToken);
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    private async Task PruneOnceAsync(QueueMaintenance maintenance, CancellationToken ct)
    {
        PruneResult pruned;
        try { pruned = await maintenance.PruneIfDueAsync(ct); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogPruneFailed(e.GetType().Name, e.Message);
            return;
        }
        if (pruned.Status == PruneStatus.Pruned)
            LogPruned(pruned.AttemptsDeleted, Options.AttemptDays, pruned.WorkersDeleted, Options.StoppedWorkerDays,
                pruned.ThroughputRowsDeleted, Options.ThroughputDays, pruned.Batches, pruned.MoreLeft ? "; more left for the next prune" : "");
        signals?.Looked.Signal(pruned);
    }

    [LoggerMessage(LogLevel.Information, "Pruned {Attempts} finished attempt(s) older than {AttemptDays} d, {Workers} stopped worker row(s) older than {WorkerDays} d and {Minutes} throughput minute row(s) older than {ThroughputDays} d in {Batches} batch(es){More}")]
    private partial void LogPruned(long attempts, int attemptDays, long workers, int workerDays, long minutes, int throughputDays, int batches, string more);

    [LoggerMessage(LogLevel.Warning, "Retention prune failed ({Type}: {Error}); trying again at the next look (every minute)")]
    private partial void LogPruneFailed(string type, string error);
}
