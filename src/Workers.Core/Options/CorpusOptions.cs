namespace Workers.Core.Options;

/// <summary>
/// Where the dashboard may enqueue corpora from (section <c>Corpus</c>). A folder asked for on the
/// dashboard must resolve, symlinks included, to a folder inside one of <see cref="AllowedRoots"/>;
/// with none configured, enqueueing from the dashboard is off. The CLI is not confined (whoever
/// runs it already has a shell). Validated once at start-up.
/// </summary>
public sealed class CorpusOptions
{
    public const string Section = "Corpus";

    /// <summary>Absolute paths of existing folders. A relative path on the dashboard is taken relative to the first.</summary>
    /// <value>The default value is empty: the dashboard cannot enqueue.</value>
    public List<string> AllowedRoots { get; set; } = [];

    /// <summary>How long one dashboard preview or enqueue may spend scanning and probing a folder
    /// before it gives up with a message (larger folders: `workers enqueue` on a shell).</summary>
    /// <value>The default value is 300 seconds.</value>
    public int ScanTimeoutSeconds { get; set; } = 300;

    /// <summary>Plausibility limits for files and shards, at every enqueue (CLI and dashboard).</summary>
    /// <value>The default value is a <see cref="CorpusLimits"/> with its documented defaults.</value>
    public CorpusLimits Limits { get; set; } = new();

    public bool Enabled => AllowedRoots.Count > 0;
    public TimeSpan ScanTimeout => TimeSpan.FromSeconds(ScanTimeoutSeconds);

    /// <summary>Every problem at once, or an empty list.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        for (var i = 0; i < AllowedRoots.Count; i++)
        {
            var root = AllowedRoots[i];
            var at = $"Corpus:AllowedRoots:{i}";
            if (string.IsNullOrWhiteSpace(root)) problems.Add($"{at} is empty; give the absolute path of a folder, e.g. /data/corpora.");
            else if (!Path.IsPathFullyQualified(root)) problems.Add($"{at} '{root}' is not an absolute path; write it from /, e.g. /data/corpora.");
            else if (!Directory.Exists(root))
                problems.Add($"{at} '{root}' is not an existing folder{(File.Exists(root) ? " (it is a file)" : "")}; create it or fix the path.");
        }
        if (ScanTimeoutSeconds < 1) problems.Add($"Corpus:ScanTimeoutSeconds must be at least 1 (is {ScanTimeoutSeconds}).");
        problems.AddRange(Limits.Validate());
        return problems;
    }
}
