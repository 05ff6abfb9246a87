namespace Workers.Core.Options;

/// <summary>
/// How long finished history is kept (section <c>Retention</c>). Pruned by the maintenance loop
/// of whichever node takes the prune lock first. Validated once at start-up.
/// </summary>
public sealed class RetentionOptions
{
    public const string Section = "Retention";

    /// <summary>Finished attempts older than this are deleted, except each shard's latest attempt,
    /// which is kept however old it is (a dead shard's last error stays readable).</summary>
    /// <value>The default value is 30 days.</value>
    public int AttemptDays { get; init; } = 30;

    /// <summary>Registry rows of workers that stopped cleanly are deleted this long after they
    /// stopped. Crash-looping and running rows are never pruned.</summary>
    /// <value>The default value is 7 days.</value>
    public int StoppedWorkerDays { get; init; } = 7;

    /// <summary>Per-minute throughput rows (GET /api/history) older than this are folded into the
    /// lifetime totals and deleted; the /metrics counters do not drop.</summary>
    /// <value>The default value is 30 days (43,200 rows).</value>
    public int ThroughputDays { get; init; } = 30;

    /// <summary>How often the fleet prunes. The last run is recorded in the database, so the
    /// interval holds fleet-wide, not per node.</summary>
    /// <value>The default value is 60 minutes.</value>
    public int PruneIntervalMinutes { get; init; } = 60;

    /// <summary>Rows deleted per statement. Each batch is its own short transaction, so a large
    /// backlog never holds locks for long.</summary>
    /// <value>The default value is 10,000.</value>
    public int BatchSize { get; init; } = 10_000;

    /// <summary>Batches per table per prune; the rest waits for the next interval, so a first
    /// prune of a years-old backlog does not keep one worker from claiming for long.</summary>
    /// <value>The default value is 100 (one million rows per table per prune at the default batch size).</value>
    public int MaxBatchesPerPrune { get; init; } = 100;

    public TimeSpan AttemptRetention => TimeSpan.FromDays(AttemptDays);
    public TimeSpan StoppedWorkerRetention => TimeSpan.FromDays(StoppedWorkerDays);
    public TimeSpan ThroughputRetention => TimeSpan.FromDays(ThroughputDays);
    public TimeSpan PruneInterval => TimeSpan.FromMinutes(PruneIntervalMinutes);

    /// <summary>Every problem at once, or an empty list.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (AttemptDays < 1) problems.Add($"Retention:AttemptDays must be at least 1 (is {AttemptDays}).");
        if (StoppedWorkerDays < 1) problems.Add($"Retention:StoppedWorkerDays must be at least 1 (is {StoppedWorkerDays}).");
        if (ThroughputDays < 2) problems.Add($"Retention:ThroughputDays must be at least 2 (is {ThroughputDays}): GET /api/history reads up to a day back.");
        if (PruneIntervalMinutes < 1) problems.Add($"Retention:PruneIntervalMinutes must be at least 1 (is {PruneIntervalMinutes}).");
        if (BatchSize is < 1 or > 100_000) problems.Add($"Retention:BatchSize must be within 1..100000 (is {BatchSize}).");
        if (MaxBatchesPerPrune < 1) problems.Add($"Retention:MaxBatchesPerPrune must be at least 1 (is {MaxBatchesPerPrune}).");
        return problems;
    }
}
