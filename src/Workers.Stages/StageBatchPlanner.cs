namespace Workers.Stages;

/// <summary>One row of a batch: <see cref="Length"/> samples of segment <see cref="Segment"/> from <see cref="Offset"/>.</summary>
public readonly record struct StagePiece(int Segment, int Offset, int Length);

/// <summary>
/// Plans a stage's batches (FunASR's batching by seconds): long segments are cut into pieces of at
/// most <c>maxPiece</c> samples overlapping by <c>overlap</c> (or kept whole, to run alone); pieces
/// are sorted by length, and consecutive pieces fill a batch while rows x its longest piece stays
/// within <c>batchSamples</c> and rows within <c>maxRows</c>. Sorting keeps padding small; a piece
/// longer than <c>batchSamples</c> is a batch of its own.
/// </summary>
public static class StageBatchPlanner
{
    public static List<StagePiece> Pieces(IReadOnlyList<int> lengths, int maxPiece, bool cut, int overlap)
    {
        var pieces = new List<StagePiece>(lengths.Count);
        for (var i = 0; i < lengths.Count; i++)
        {
            var n = lengths[i];
            if (n <= maxPiece || !cut)
            {
                pieces.Add(new StagePiece(i, 0, n));
                continue;
            }
            var step = maxPiece - overlap;
            for (var start = 0; ; start += step)
            {
                var len = Math.Min(maxPiece, n - start);
                pieces.Add(new StagePiece(i, start, len));
                if (start + len >= n) break;
            }
        }
        return pieces;
    }

    /// <summary>Batches of <paramref name="pieces"/>; each batch is sorted by length ascending, so its last row is its longest.</summary>
    public static List<StagePiece[]> Batches(List<StagePiece> pieces, long batchSamples, int maxRows)
    {
        var sorted = pieces.OrderBy(p => p.Length).ThenBy(p => p.Segment).ThenBy(p => p.Offset).ToList();
        var batches = new List<StagePiece[]>();
        var start = 0;
        for (var i = 1; i <= sorted.Count; i++)
        {
            var rows = i - start;
            var full = i == sorted.Count || rows >= maxRows || (long)(rows + 1) * sorted[i].Length > batchSamples;
            if (!full) continue;
            batches.Add(sorted.GetRange(start, rows).ToArray());
            start = i;
        }
        return batches;
    }
}
