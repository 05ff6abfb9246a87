namespace Workers.Postgres.Dashboard;

/// <summary>A corpus's progress as the dashboard shows it. Every shard state is present in <see cref="ShardsByState"/>.</summary>
public sealed record CorpusProgress(long Id, string Name, string Queue, int Priority, string Pipeline, int Files, double AudioSeconds,
    double ProcessedSeconds, IReadOnlyDictionary<string, int> ShardsByState, long Segments, int FailedFiles, bool Cancelled,
    DateTime CreatedAt, double RecentAudioSeconds)
{
    /// <summary>Processed over total audio, 0 to 1 (1 for a corpus without audio).</summary>
    public double Progress => AudioSeconds > 0 ? Math.Min(1, ProcessedSeconds / AudioSeconds) : 1;

    /// <summary>Audio seconds not processed yet.</summary>
    public double RemainingSeconds => Math.Max(0, AudioSeconds - ProcessedSeconds);

    /// <summary>Audio seconds finished per wall-clock second over <see cref="DashboardReader.RateWindow"/>.</summary>
    public double RecentRate => RecentAudioSeconds / DashboardReader.RateWindow.TotalSeconds;

    /// <summary>Seconds left at <see cref="RecentRate"/>: 0 when done, null when cancelled or nothing finished in the window.</summary>
    public double? EtaSeconds => Cancelled ? null : RemainingSeconds <= 0 ? 0 : RecentRate > 0 ? RemainingSeconds / RecentRate : null;
}

/// <summary>Filters of the shard list; null means "any". <see cref="After"/> is the keyset cursor (last id seen).</summary>
public sealed record ShardFilter(long? CorpusId = null, string? State = null, string? Queue = null, string? Node = null,
    string? Worker = null, string? File = null, long After = 0, int Limit = 100);

public sealed record ShardRow(long Id, long CorpusId, string Corpus, int Ordinal, string Queue, int Priority, string State,
    double AudioSeconds, int ItemCount, int Attempt, int MaxAttempts, double ProcessedSeconds, int Segments, string? LeaseOwner,
    string? LastError, DateTime NotBefore, DateTime? StartedAt, DateTime? FinishedAt);

public sealed record ShardItemRow(int Ordinal, int FileIndex, string Path, double StartSeconds, double EndSeconds);

public sealed record ShardAttemptRow(int Attempt, string Worker, string Node, string? Gpu, string? ExecutionProvider, DateTime StartedAt,
    DateTime? FinishedAt, string Outcome, string? ErrorType, string? ErrorMessage, string? ErrorStack, string? LogTail);

public sealed record ShardFileFailureRow(string Path, int Attempt, double StartSeconds, double EndSeconds, string Error);

public sealed record ShardDetail(ShardRow Shard, DateTime? LeaseExpiresAt, DateTime? HeartbeatAt, DateTime CreatedAt, string RootDir,
    IReadOnlyList<ShardItemRow> Items, IReadOnlyList<ShardAttemptRow> Attempts, IReadOnlyList<ShardFileFailureRow> FileFailures,
    long SegmentsWritten);

/// <summary>One segment written for a shard, with its file's path.</summary>
public sealed record ShardSegmentRow(int FileIndex, string Path, double StartSeconds, double EndSeconds);

/// <summary>A corpus with failed files: <see cref="FailedFiles"/> at enqueue (unreadable, <see cref="EnqueueFailedFiles"/>) plus while processed.</summary>
public sealed record FailedFileCorpus(long CorpusId, string Corpus, int FailedFiles, int EnqueueFailedFiles);

/// <summary>A failed file: its newest processing failure (with shard and attempt), or else the error it had at enqueue.</summary>
public sealed record FailedFileRow(int FileIndex, string Path, string Error, long? ShardId, int? Attempt);

public sealed record PausedQueue(string Queue, string PausedBy, DateTime PausedAt);

/// <summary>Who did an action, for the audit trail: the authenticated user (or <c>local</c>) and the remote address.</summary>
public sealed record Actor(string Name, string? RemoteAddress);

public sealed record AuditEntry(long Id, DateTime At, string Actor, string? RemoteAddress, string Action, string Target, int RowsAffected,
    string? Detail);

/// <summary>What /metrics reports from the database.</summary>
public sealed record MetricsSnapshot(IReadOnlyDictionary<string, long> ShardsByState, double ProcessedSeconds, long Corpora,
    double EnqueuedSeconds, double RecentAudioSeconds, int PausedQueues);
