using Workers.Core.Naming;

namespace Workers.Core.Corpora;

/// <summary>
/// What `workers enqueue` and the dashboard's enqueue form are asked for, checked by the same
/// rules. <see cref="Name"/> null means the source folder's (or manifest's) name.
/// </summary>
public sealed record EnqueueSettings(string? Name, double ShardMinutes, string Pipeline, string Queue, int Priority)
{
    /// <summary>The corpus name: the given one, or the last component of <paramref name="sourcePath"/> without extension.</summary>
    public string CorpusName(string sourcePath) =>
        Name ?? Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(Path.GetFullPath(sourcePath)));

    /// <summary>Every problem at once, or an empty list.</summary>
    /// <param name="corpusName">The name that will be used (<see cref="CorpusName"/>).</param>
    /// <param name="pipelines">Configured pipelines (sections of Pipelines); <c>vad</c> is always known.</param>
    /// <param name="field">How the caller names a setting, e.g. "shard_minutes" → "--shard-minutes" for the CLI.</param>
    public IReadOnlyList<string> Validate(string corpusName, IEnumerable<string> pipelines, Func<string, string> field)
    {
        var problems = new List<string>();
        if (!(ShardMinutes > 0 && ShardMinutes <= 24 * 60)) problems.Add($"{field("shard_minutes")} must be between 0 and 1440 (got {ShardMinutes}).");
        if (Names.QueueProblem(Queue) is { } q) problems.Add($"{field("queue")} '{Names.Printable(Queue)}' {q}.");
        if (Pipeline != "vad" && !pipelines.Contains(Pipeline))
            problems.Add($"{field("pipeline")} '{Names.Printable(Pipeline)}' is not configured (Pipelines section of appsettings.json).");
        if (Names.CorpusProblem(corpusName) is { } n) problems.Add($"{field("name")} '{Names.Printable(corpusName)}' {n}.");
        return problems;
    }
}
