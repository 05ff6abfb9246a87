namespace Workers.Core.Sharding;

/// <summary>
/// One audio file offered to <see cref="ShardPlanner"/>: its path and probed duration.
/// </summary>
/// <remarks>
/// A struct because a corpus can hold hundreds of thousands of files and the planner keeps
/// them in one array rather than as one object each.
/// </remarks>
/// <param name="Path">The file's path; unique within a plan and compared ordinally.</param>
/// <param name="DurationSeconds">
/// The file's duration in seconds. Must be positive and finite: the caller filters out empty
/// or unreadable files, which have nothing to plan.
/// </param>
public readonly record struct PlanInputFile(string Path, double DurationSeconds);
