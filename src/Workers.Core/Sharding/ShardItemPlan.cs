namespace Workers.Core.Sharding;

/// <summary>
/// One time range of one file within a shard: a whole file, or one piece of a file longer
/// than the shard target.
/// </summary>
/// <remarks>
/// Refers to its file by index rather than by path so that an item is a small struct and a
/// plan of hundreds of thousands of items is one array.
/// </remarks>
/// <param name="FileIndex">Index into <see cref="ShardPlan.Files"/>.</param>
/// <param name="StartSeconds">Start of the range within the file, in seconds; 0 for a file's first item.</param>
/// <param name="EndSeconds">End of the range (exclusive), in seconds; exactly the file's duration for its last item.</param>
public readonly record struct ShardItemPlan(int FileIndex, double StartSeconds, double EndSeconds);
