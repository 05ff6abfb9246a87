using Workers.Pipeline.Processing;

namespace Workers.Pipeline.Tests.Processing;

/// <summary>The rule `workers export` applies (SegmentExport.ReadAllAsync), restated for segments found in memory.
/// Joins segments of one file that were cut by a shard boundary. A file longer than a shard is
/// split into ranges; speech running across a cut ends one range's last segment exactly at the cut
/// and starts the next range's first segment exactly there (the rules clamp padding to the range).
/// Merging those two restores the one segment an unsplit run finds, so a cut neither adds a
/// segment boundary nor loses the speech around it.
/// </summary>
internal static class SegmentMerger
{
    /// <param name="segments">Segments of one file, ordered by start.</param>
    /// <param name="cuts">Where the file was cut (range starts other than 0), in seconds.</param>
    public static List<FoundSegment> MergeAtCuts(IReadOnlyList<FoundSegment> segments, IReadOnlyList<double> cuts, double tolerance = 1e-6)
    {
        var result = new List<FoundSegment>(segments.Count);
        foreach (var s in segments)
        {
            if (result.Count > 0)
            {
                var last = result[^1];
                if (last.FileIndex == s.FileIndex && Math.Abs(last.EndSeconds - s.StartSeconds) <= tolerance && IsCut(cuts, s.StartSeconds, tolerance))
                {
                    result[^1] = last with { EndSeconds = Math.Max(last.EndSeconds, s.EndSeconds) };
                    continue;
                }
            }
            result.Add(s);
        }
        return result;
    }

    private static bool IsCut(IReadOnlyList<double> cuts, double t, double tolerance)
    {
        foreach (var c in cuts) if (Math.Abs(c - t) <= tolerance) return true;
        return false;
    }
}
