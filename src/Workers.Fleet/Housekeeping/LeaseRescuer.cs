using Workers.Core.Signals;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Workers.Core.Options;
using Workers.Fleet.Resilience;
using Workers.Postgres.Queue;
using Workers.Postgres;

namespace Workers.Fleet.Housekeeping;

/// <summary>
/// Re-queues running shards whose lease expired (a worker killed, a node lost), at start and then
/// every <c>Queue:RescueIntervalSeconds</c> (default 15 s), on its own timer: not when some worker
/// next comes back to claim. Runs in every worker process and in <c>workers serve</c>, so an expired
/// lease shows as <c>lease_expired</c> and is requeued within a lease plus one interval whatever the
/// load, and even with no worker running. Any number of rescuers may run at once: each rescue is the
/// one atomic UPDATE of <see cref="ShardQueue.RescueExpiredAsync"/> (rows locked with SKIP LOCKED,
/// expiry on the database's clock), so two never rescue the same attempt and no lock is added here.
/// A failed rescue (database down) is logged and tried again on the next tick.
/// </summary>
public sealed partial class LeaseRescuer(
    IWorkersDatabase database,
    IOptions<QueueOptions> options,
    TimeProvider time,
    ILogger<LeaseRescuer> logger,
    LeaseRescuer.Signals? signals = null) : BackgroundService
{
    /// <summary>What a test can wait for: each rescue pass, with the shards it re-queued (empty when none expired), or its failure.</summary>
    public sealed class Signals
    {
        public TestSignal<IReadOnlyList<RescuedShard>> Rescued { get; } = new();
        public TestSignal<Exception> Failed { get; } = new();
    }

    // Read when it runs, not when built: the host builds its services before it validates options.
    private QueueOptions Options => options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var queue = new ShardQueue(await database.WhenOpenAsync(stoppingToken), Options, time);
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Options.RescueIntervalSeconds), time);
            do await RescueOnceAsync(queue, stoppingToken);
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    private async Task RescueOnceAsync(ShardQueue queue, CancellationToken ct)
    {
        IReadOnlyList<RescuedShard> rescued;
        try { rescued = await queue.RescueExpiredAsync(ct: ct); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A database outage (or anything else) must not end the rescuer: the next tick tries again.
            LogRescueFailed(e.GetType().Name, PostgresErrors.IsTransient(e) ? "database unavailable: " + e.Message : e.Message, Options.RescueIntervalSeconds);
            signals?.Failed.Signal(e);
            return;
        }
        foreach (var r in rescued) LogRescued(r.Id, r.Attempt, r.State);
        signals?.Rescued.Signal(rescued);
    }

    [LoggerMessage(LogLevel.Information, "Rescued shard {Shard} attempt {Attempt} (expired lease) -> {State}")]
    private partial void LogRescued(long shard, int attempt, string state);

    [LoggerMessage(LogLevel.Warning, "Lease rescue failed ({Type}: {Error}); trying again in {Seconds} s")]
    private partial void LogRescueFailed(string type, string error, int seconds);
}
