namespace Workers.Core.Queue;

/// <summary>Shard lifecycle: queued -> running -> succeeded; failures go back to queued (with
/// backoff) or to dead; cancelled when the corpus is cancelled. Mirrors the PostgreSQL enum.</summary>
public enum ShardState
{
    Queued,
    Running,
    Succeeded,
    Dead,
    Cancelled,
}

public static class ShardStates
{
    public static readonly IReadOnlyList<ShardState> All = Enum.GetValues<ShardState>();

    public static string ToDb(this ShardState s) => s switch
    {
        ShardState.Queued => "queued",
        ShardState.Running => "running",
        ShardState.Succeeded => "succeeded",
        ShardState.Dead => "dead",
        ShardState.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(s), s, null),
    };

    public static ShardState FromDb(string s) => s switch
    {
        "queued" => ShardState.Queued,
        "running" => ShardState.Running,
        "succeeded" => ShardState.Succeeded,
        "dead" => ShardState.Dead,
        "cancelled" => ShardState.Cancelled,
        _ => throw new ArgumentOutOfRangeException(nameof(s), s, "unknown shard state"),
    };
}
