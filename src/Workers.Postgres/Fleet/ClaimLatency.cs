namespace Workers.Postgres.Fleet;

/// <summary>
/// What a worker reports about its claims with each registry heartbeat: totals since the process
/// started, the latest claim, and the slowest claim since the previous report (null: no claim).
/// </summary>
public sealed record ClaimStats(long Claims, double ClaimSeconds, double? LastMs, double? IntervalMaxMs);

/// <summary>
/// Claim timings kept in memory by the claim loop and read by the registry heartbeat, so timing
/// a claim costs no database write of its own. Thread-safe: one loop records, another reports.
/// </summary>
public sealed class ClaimLatency
{
    private readonly Lock _lock = new();
    private long _claims;
    private double _seconds;
    private double? _lastMs;
    private double? _intervalMaxMs;

    /// <summary>Records one claim call (whether or not it found a shard).</summary>
    public void Record(TimeSpan elapsed)
    {
        var ms = elapsed.TotalMilliseconds;
        lock (_lock)
        {
            _claims++;
            _seconds += elapsed.TotalSeconds;
            _lastMs = ms;
            _intervalMaxMs = Math.Max(_intervalMaxMs ?? 0, ms);
        }
    }

    /// <summary>The figures to report now; starts a new interval. If the report fails, <see cref="Unreport"/> it.</summary>
    public ClaimStats TakeReport()
    {
        lock (_lock)
        {
            var s = new ClaimStats(_claims, _seconds, _lastMs, _intervalMaxMs);
            _intervalMaxMs = null;
            return s;
        }
    }

    /// <summary>A report did not reach the database: its interval's max goes into the next one.</summary>
    public void Unreport(ClaimStats report)
    {
        if (report.IntervalMaxMs is not { } max) return;
        lock (_lock) _intervalMaxMs = Math.Max(_intervalMaxMs ?? 0, max);
    }
}
