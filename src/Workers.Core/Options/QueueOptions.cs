namespace Workers.Core.Options;

/// <summary>Shard queue settings (section <c>Queue</c>). Validated once at start-up.</summary>
public sealed class QueueOptions
{
    public const string Section = "Queue";

    /// <summary>How long a claim is valid without a heartbeat.</summary>
    /// <value>The default value is 60 seconds.</value>
    public int LeaseSeconds { get; init; } = 60;

    /// <summary>How often a worker renews its lease. Must be well under the lease so a
    /// missed beat or two does not lose the shard.</summary>
    /// <value>The default value is 10 seconds.</value>
    public int HeartbeatSeconds { get; init; } = 10;

    /// <summary>Attempts before a shard is <c>dead</c>.</summary>
    /// <value>The default value is 5.</value>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>First retry delay; doubles each attempt, with jitter.</summary>
    /// <value>The default value is 30 seconds.</value>
    public double RetryBaseSeconds { get; init; } = 30;

    /// <summary>Cap on the retry delay.</summary>
    /// <value>The default value is 3600 seconds.</value>
    public double RetryMaxSeconds { get; init; } = 3600;

    /// <summary>Fraction of the delay added at random, so a burst of failures does not retry in lockstep.</summary>
    /// <value>The default value is 0.25.</value>
    public double RetryJitter { get; init; } = 0.25;

    /// <summary>How often the maintenance loop looks for expired leases.</summary>
    /// <value>The default value is 15 seconds.</value>
    public int RescueIntervalSeconds { get; init; } = 15;

    /// <summary>Idle workers poll this often even without a NOTIFY (a lost notification costs at most this).</summary>
    /// <value>The default value is 5 seconds.</value>
    public int PollSeconds { get; init; } = 5;

    /// <summary>A worker whose clock is off the database's by more than this logs a warning (at start-up and on its
    /// registry heartbeat), and its row is flagged on the fleet page and in <c>status --fleet</c>. The queue itself
    /// runs on the database's clock, so a skewed node keeps working correctly; the warning is for everything else
    /// a node stamps with its own clock (logs, attempt log lines, GPU samples).</summary>
    /// <value>The default value is 2 seconds.</value>
    public double ClockSkewWarnSeconds { get; init; } = 2;

    public TimeSpan Lease => TimeSpan.FromSeconds(LeaseSeconds);
    public TimeSpan ClockSkewWarn => TimeSpan.FromSeconds(ClockSkewWarnSeconds);
    public TimeSpan Heartbeat => TimeSpan.FromSeconds(HeartbeatSeconds);

    /// <summary>Every problem at once, or an empty list.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (LeaseSeconds < 5) problems.Add($"Queue:LeaseSeconds must be at least 5 (is {LeaseSeconds}).");
        if (HeartbeatSeconds < 1) problems.Add($"Queue:HeartbeatSeconds must be at least 1 (is {HeartbeatSeconds}).");
        if (HeartbeatSeconds * 2 > LeaseSeconds)
            problems.Add($"Queue:HeartbeatSeconds ({HeartbeatSeconds}) must be at most half of Queue:LeaseSeconds ({LeaseSeconds}), or one late beat loses the shard.");
        if (MaxAttempts < 1) problems.Add($"Queue:MaxAttempts must be at least 1 (is {MaxAttempts}).");
        if (!(RetryBaseSeconds >= 0)) problems.Add($"Queue:RetryBaseSeconds must be >= 0 (is {RetryBaseSeconds}).");
        if (!(RetryMaxSeconds >= RetryBaseSeconds)) problems.Add($"Queue:RetryMaxSeconds must be >= Queue:RetryBaseSeconds (is {RetryMaxSeconds}).");
        if (!(RetryJitter >= 0 && RetryJitter <= 1)) problems.Add($"Queue:RetryJitter must be within 0..1 (is {RetryJitter}).");
        if (RescueIntervalSeconds < 1) problems.Add($"Queue:RescueIntervalSeconds must be at least 1 (is {RescueIntervalSeconds}).");
        if (!(ClockSkewWarnSeconds > 0)) problems.Add($"Queue:ClockSkewWarnSeconds must be > 0 (is {ClockSkewWarnSeconds}).");
        if (PollSeconds < 1) problems.Add($"Queue:PollSeconds must be at least 1 (is {PollSeconds}).");
        return problems;
    }

    /// <summary>Delay before retry number <paramref name="attempt"/> + 1: base * 2^(attempt-1), capped, plus jitter.</summary>
    public TimeSpan RetryDelay(int attempt, double random01)
    {
        var exp = Math.Min(30, Math.Max(0, attempt - 1));
        var seconds = Math.Min(RetryMaxSeconds, RetryBaseSeconds * Math.Pow(2, exp));
        return TimeSpan.FromSeconds(seconds * (1 + RetryJitter * random01));
    }
}
