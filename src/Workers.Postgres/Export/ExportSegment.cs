namespace Workers.Postgres.Export;

/// <summary>
/// One speech segment as exported: its file (path as stored: relative to the corpus root for
/// folder corpora, as written for manifests), the file's duration, the segment's range in
/// seconds from the file's start, and the shard that found it.
/// </summary>
public readonly record struct ExportSegment(int FileIndex, string File, double FileDurationSeconds, double StartSeconds, double EndSeconds, long ShardId, bool StartsAtCut = false)
{
    /// <summary>The model stages' results, one JSON object <c>{"stage": result, ...}</c>; null when the pipeline has no stages.
    /// A segment joined across a shard cut carries the first piece's results.</summary>
    public string? Results { get; init; }

    /// <summary>The start in whole milliseconds, as exported and as used in segment audio names.</summary>
    public long StartMs => ToMilliseconds(StartSeconds);

    /// <summary>The end in whole milliseconds, as exported and as used in segment audio names.</summary>
    public long EndMs => ToMilliseconds(EndSeconds);

    /// <summary>Seconds rounded to the millisecond, half away from zero (0.0005 s becomes 1 ms).</summary>
    public static long ToMilliseconds(double seconds) => (long)Math.Round(seconds * 1000, MidpointRounding.AwayFromZero);
}
