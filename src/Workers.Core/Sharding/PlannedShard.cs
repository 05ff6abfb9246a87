namespace Workers.Core.Sharding;

/// <summary>
/// One shard of a <see cref="ShardPlan"/>: a contiguous run of <see cref="ShardPlan.Items"/>,
/// <c>Items[FirstItem .. FirstItem + ItemCount)</c>.
/// </summary>
/// <remarks>
/// Shards reference a range of the plan's item array instead of holding their own lists, so
/// planning allocates one item array for the whole corpus.
/// </remarks>
/// <param name="Ordinal">Position of the shard in the plan, 0 to <c>Shards.Count - 1</c>.</param>
/// <param name="AudioSeconds">Sum of the shard's item durations, in seconds.</param>
/// <param name="FirstItem">Index of the shard's first item in <see cref="ShardPlan.Items"/>.</param>
/// <param name="ItemCount">Number of items in the shard; at least 1.</param>
public sealed record PlannedShard(int Ordinal, double AudioSeconds, int FirstItem, int ItemCount);
