namespace Workers.Core.Sharding;

/// <summary>
/// A corpus split into duration-balanced shards, as produced by <see cref="ShardPlanner.Plan"/>.
/// </summary>
/// <param name="Files">The planned files, sorted by path (ordinal comparison).</param>
/// <param name="Items">Every file range of the plan, in shard order; files appear in path order.</param>
/// <param name="Shards">The shards, in ordinal order; each covers a contiguous run of <paramref name="Items"/>.</param>
/// <param name="TargetSeconds">The audio duration each shard was packed up to.</param>
public sealed record ShardPlan(
    IReadOnlyList<PlanInputFile> Files,
    IReadOnlyList<ShardItemPlan> Items,
    IReadOnlyList<PlannedShard> Shards,
    double TargetSeconds)
{
    /// <summary>The planned files, sorted by path (ordinal comparison).</summary>
    /// <remarks>
    /// The constructor computes <see cref="TotalSeconds"/> from it, and setting it again
    /// recomputes it, so a copy made with <c>with { Files = ... }</c> never reports the total
    /// of the old files.
    /// </remarks>
    public IReadOnlyList<PlanInputFile> Files
    {
        get;
        init
        {
            ArgumentNullException.ThrowIfNull(value);
            field = value;
            TotalSeconds = SumDurations(value);
        }
    } = Files ?? throw new ArgumentNullException(nameof(Files));

    /// <summary>Total audio of the corpus in seconds: the sum of the files' durations.</summary>
    /// <remarks>Computed once when <see cref="Files"/> is set rather than on every read, since a plan can hold 400,000 files.</remarks>
    public double TotalSeconds { get; private init; } = SumDurations(Files);

    private static double SumDurations(IReadOnlyList<PlanInputFile> files)
    {
        double total = 0;
        for (int i = 0; i < files.Count; i++)
        {
            total += files[i].DurationSeconds;
        }

        return total;
    }
}
