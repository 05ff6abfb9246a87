namespace Workers.Postgres.Queue;

/// <summary>Who is claiming: written into the lease and the attempt row, with the execution
/// provider actually in use (so a GPU slot that fell back to CPU shows in every attempt).</summary>
public sealed record WorkerIdentity(string Worker, string Node, string? Gpu = null, string? ExecutionProvider = null);

/// <summary>A shard this worker holds. (Id, Attempt, owner) is the fencing token.</summary>
public sealed record ClaimedShard(long Id, long CorpusId, int Attempt, int MaxAttempts, string Queue, double AudioSeconds, int ItemCount)
{
    /// <summary>The corpus's pipeline (a section of <c>Pipelines</c>), chosen at enqueue: what the worker runs on this shard.</summary>
    public string Pipeline { get; init; } = "vad";
}

/// <summary>One range of one file inside a shard; <see cref="Path"/> is as stored (relative to <see cref="RootDir"/> for folder corpora).
/// <see cref="FileSeconds"/>: the whole file's duration at enqueue.</summary>
public sealed record ShardItem(int Ordinal, int FileIndex, string Path, double StartSeconds, double EndSeconds, string RootDir, double? FileSeconds = null)
{
    public string FullPath => System.IO.Path.IsPathRooted(Path) ? Path : System.IO.Path.Combine(RootDir, Path);
}

/// <summary>Why an attempt failed, as a person needs it.</summary>
public sealed record ShardFailure(string ErrorType, string Message, string? Stack = null, string? LogTail = null)
{
    public static ShardFailure From(Exception e, string? logTail = null) =>
        new(e.GetType().Name, e.Message, e.ToString(), logTail);
}

public enum FailOutcome
{
    /// <summary>Back to queued after a backoff delay.</summary>
    Retrying,
    /// <summary>Attempt budget spent.</summary>
    Dead,
    /// <summary>The lease was no longer ours: nothing was written.</summary>
    LeaseLost,
}

/// <summary>A speech segment found in a file (seconds from the file's start).</summary>
public readonly record struct SegmentRow(int FileIndex, double StartSeconds, double EndSeconds);

/// <summary>One model stage's result for one segment (the segment's file and start, as in its <see cref="SegmentRow"/>), as JSON.</summary>
public readonly record struct SegmentResultRow(int FileIndex, double StartSeconds, string Stage, string ResultJson);

/// <summary>A file range that could not be processed; the shard went on without it.</summary>
public readonly record struct FileFailureRow(int FileIndex, double StartSeconds, double EndSeconds, string Error);

public sealed record RescuedShard(long Id, int Attempt, string State);
