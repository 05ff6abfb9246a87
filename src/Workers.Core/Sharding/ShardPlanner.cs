using System.Diagnostics.CodeAnalysis;

namespace Workers.Core.Sharding;

/// <summary>
/// Splits a corpus into shards of about <c>targetSeconds</c> of audio each, so that every
/// worker claim is a similar amount of GPU work however the corpus's file lengths vary.
/// </summary>
/// <remarks>
/// <para>
/// Files are sorted by path (ordinal), so the same files in any order give the same plan, and
/// a shard holds neighbouring files (often one speaker or one session) in path order.
/// </para>
/// <para>
/// A file longer than the target is cut into <c>ceil(duration / target)</c> roughly equal
/// pieces with cut points on whole milliseconds; its last piece ends at exactly the file's
/// duration, so every second of every file is in exactly one item. No item is longer than the
/// target, so greedy packing (close the shard when the next item would take it past the target)
/// never makes a shard longer than the target, up to floating-point rounding.
/// </para>
/// <para>
/// Planning is three linear passes over one sorted array plus the sort itself; the only
/// allocations are the result's arrays and its shard records.
/// </para>
/// </remarks>
public static class ShardPlanner
{
    /// <summary>The usual shard size: 30 minutes of audio.</summary>
    public const double DefaultTargetSeconds = 30 * 60;

    /// <summary>
    /// The usual cap on items per shard: a shard closes at the duration target or at this many
    /// items, whichever comes first (a million 1 ms items in one shard took a worker 1.8 GB).
    /// </summary>
    public const int DefaultMaxItemsPerShard = 5_000;

    /// <summary>
    /// The smallest accepted target, one millisecond: split points are whole milliseconds,
    /// so a smaller target could not hold even one piece of a split file.
    /// </summary>
    public const double MinTargetSeconds = 0.001;

    /// <summary>
    /// The longest file that can be split (about 31 years). Beyond it a double's resolution is
    /// too coarse to place cut points on whole milliseconds.
    /// </summary>
    public const double MaxSplitFileSeconds = 1e9;

    /// <summary>Plans duration-balanced shards for <paramref name="files"/>.</summary>
    /// <param name="files">The files to plan, in any order. Paths must be unique; durations positive and finite.</param>
    /// <param name="targetSeconds">
    /// Audio per shard in seconds (usually <see cref="DefaultTargetSeconds"/>); finite and at
    /// least <see cref="MinTargetSeconds"/>.
    /// </param>
    /// <param name="maxItemsPerShard">Most items in one shard (usually <see cref="DefaultMaxItemsPerShard"/>); at least 1.</param>
    /// <returns>The plan; files sorted by path, shards numbered from 0.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="targetSeconds"/> is not finite or is below <see cref="MinTargetSeconds"/>, or <paramref name="maxItemsPerShard"/> is below 1.</exception>
    /// <exception cref="ArgumentException">
    /// A file has a missing path, a duplicate path, a duration that is zero, negative or not a
    /// finite number, or is too long to split at this target. The message names the file.
    /// </exception>
    public static ShardPlan Plan(IEnumerable<PlanInputFile> files, double targetSeconds, int maxItemsPerShard = DefaultMaxItemsPerShard)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxItemsPerShard, 1);
        if (!(targetSeconds >= MinTargetSeconds) || !double.IsFinite(targetSeconds))
        {
            ThrowInvalidTarget(targetSeconds);
        }

        // Our own copy, sorted in place and kept as the plan's Files. Scans and manifests often
        // list files in path order already; checking first skips the sort (most of the cost).
        PlanInputFile[] sorted = files.ToArray();
        if (!IsSortedByPath(sorted))
        {
            sorted.AsSpan().Sort(default(PathOrdinalComparer));
        }

        // Whole milliseconds of target; pieces are sized against it so they stay within the target.
        long targetMs = Math.Max(1, (long)Math.Floor(Math.Min(targetSeconds, MaxSplitFileSeconds) * 1000));

        // Pass 1: validate and count items, so the item array is allocated once at its final size.
        long itemCount = 0;
        double totalSeconds = 0;
        for (int i = 0; i < sorted.Length; i++)
        {
            ref readonly PlanInputFile file = ref sorted[i];
            if (string.IsNullOrEmpty(file.Path))
            {
                ThrowMissingPath(file);
            }

            if (i > 0 && string.Equals(sorted[i - 1].Path, file.Path, StringComparison.Ordinal))
            {
                ThrowDuplicatePath(file.Path);
            }

            double duration = file.DurationSeconds;
            if (!(duration > 0) || !double.IsFinite(duration))
            {
                ThrowInvalidDuration(file);
            }

            totalSeconds += duration;
            itemCount += duration <= targetSeconds ? 1 : GetSplit(file, targetMs).Pieces;
        }

        if (itemCount > Array.MaxLength)
        {
            ThrowTooManyItems(itemCount, targetSeconds);
        }

        // Pass 2: cut and pack in one go; items come out in path order, pieces in time order.
        int shardEstimate = (int)Math.Min(Array.MaxLength, Math.Max(EstimateShardCount(totalSeconds, targetSeconds, itemCount), (itemCount + maxItemsPerShard - 1) / maxItemsPerShard));
        var packer = new Packer(new ShardItemPlan[itemCount], shardEstimate, targetSeconds, maxItemsPerShard);
        for (int i = 0; i < sorted.Length; i++)
        {
            double duration = sorted[i].DurationSeconds;
            if (duration <= targetSeconds)
            {
                packer.Add(new ShardItemPlan(i, 0, duration));
                continue;
            }

            // Cut points are ceil(k * D / n) ms with D the duration rounded up to whole ms (see
            // GetSplit for the one exception): each
            // piece is at most ceil(D / n) <= targetMs long, and at least floor(D / n) >= 1 ms.
            // k * D / n is computed as k * q + k * r / n so that nothing overflows a long
            // (n is at most Array.MaxLength, so k * r < n * n < 2^62).
            (long totalMs, long pieces) = GetSplit(sorted[i], targetMs);
            long q = totalMs / pieces;
            long r = totalMs % pieces;
            double start = 0;
            for (long k = 1; k < pieces; k++)
            {
                long cutMs = (k * q) + (((k * r) + pieces - 1) / pieces);
                double end = cutMs / 1000.0;
                packer.Add(new ShardItemPlan(i, start, end));
                start = end;
            }

            packer.Add(new ShardItemPlan(i, start, duration));
        }

        return new ShardPlan(
            Array.AsReadOnly(sorted),
            Array.AsReadOnly(packer.Items),
            packer.Finish().AsReadOnly(),
            targetSeconds);
    }

    /// <summary>How a file longer than the target is split: its length in whole ms (rounded up) and its piece count.</summary>
    private static (long TotalMs, long Pieces) GetSplit(in PlanInputFile file, long targetMs)
    {
        double duration = file.DurationSeconds;
        if (duration > MaxSplitFileSeconds)
        {
            ThrowTooLongToSplit(file);
        }

        long totalMs = (long)Math.Ceiling(duration * 1000);

        // If the duration sits within rounding of a whole millisecond below it, take that
        // millisecond as the length, so the last cut point lies strictly before the duration
        // and the last piece is never empty.
        if ((totalMs - 1) / 1000.0 >= duration)
        {
            totalMs--;
        }

        long pieces = (totalMs + targetMs - 1) / targetMs;
        if (pieces > Array.MaxLength)
        {
            ThrowTooLongToSplit(file);
        }

        return (totalMs, Math.Max(1, pieces));
    }

    private static bool IsSortedByPath(PlanInputFile[] files)
    {
        for (int i = 1; i < files.Length; i++)
        {
            if (string.CompareOrdinal(files[i - 1].Path, files[i].Path) > 0)
            {
                return false;
            }
        }

        return true;
    }

    private static int EstimateShardCount(double totalSeconds, double targetSeconds, long itemCount)
    {
        // Greedy packing fills shards to the target minus, on average, part of one item; a
        // quarter of slack covers typical corpora without a regrowth of the list.
        double estimate = Math.Ceiling(totalSeconds / targetSeconds * 1.25) + 1;
        return (int)Math.Min(Math.Min(estimate, itemCount), Array.MaxLength);
    }

    /// <summary>Greedy packer: appends items and closes a shard when the next item would overflow it or the shard is full.</summary>
    private struct Packer(ShardItemPlan[] items, int shardCapacity, double targetSeconds, int maxItems)
    {
        private readonly List<PlannedShard> _shards = new(shardCapacity);
        private int _count;
        private int _shardFirst;
        private double _shardSeconds;

        public readonly ShardItemPlan[] Items => items;

        public void Add(ShardItemPlan item)
        {
            double seconds = item.EndSeconds - item.StartSeconds;
            if (_count > _shardFirst && (_shardSeconds + seconds > targetSeconds || _count - _shardFirst >= maxItems))
            {
                CloseShard();
            }

            items[_count++] = item;
            _shardSeconds += seconds;
        }

        public List<PlannedShard> Finish()
        {
            if (_count > _shardFirst)
            {
                CloseShard();
            }

            return _shards;
        }

        private void CloseShard()
        {
            _shards.Add(new PlannedShard(_shards.Count, _shardSeconds, _shardFirst, _count - _shardFirst));
            _shardFirst = _count;
            _shardSeconds = 0;
        }
    }

    private readonly struct PathOrdinalComparer : IComparer<PlanInputFile>
    {
        public int Compare(PlanInputFile x, PlanInputFile y) => string.CompareOrdinal(x.Path, y.Path);
    }

    [DoesNotReturn]
    private static void ThrowInvalidTarget(double targetSeconds) =>
        throw new ArgumentOutOfRangeException(
            nameof(targetSeconds),
            targetSeconds,
            $"The shard target must be a finite number of seconds of at least {MinTargetSeconds} (split points are whole milliseconds); the usual value is {DefaultTargetSeconds} (30 minutes).");

    [DoesNotReturn]
    private static void ThrowMissingPath(in PlanInputFile file) =>
        throw new ArgumentException(
            $"A file of duration {file.DurationSeconds} s has no path; every planned file needs a unique path.",
            "files");

    [DoesNotReturn]
    private static void ThrowDuplicatePath(string path) =>
        throw new ArgumentException(
            $"File '{path}' is listed more than once; each path can be planned only once. Remove the duplicate from the input.",
            "files");

    [DoesNotReturn]
    private static void ThrowInvalidDuration(in PlanInputFile file) =>
        throw new ArgumentException(
            $"File '{file.Path}' has duration {file.DurationSeconds} s; only files with a positive, finite duration can be planned. Filter out empty or unreadable files before planning.",
            "files");

    [DoesNotReturn]
    private static void ThrowTooLongToSplit(in PlanInputFile file) =>
        throw new ArgumentException(
            $"File '{file.Path}' ({file.DurationSeconds} s) is too long to split into shards of this target; check its probed duration, or raise the shard target.",
            "files");

    [DoesNotReturn]
    private static void ThrowTooManyItems(long itemCount, double targetSeconds) =>
        throw new ArgumentException(
            $"Shards of {targetSeconds} s would need {itemCount} items, more than one plan can hold ({Array.MaxLength}); raise the shard target.",
            nameof(targetSeconds));
}
