using Workers.Core.Options;
using Workers.Core.Sharding;

namespace Workers.Core.Corpora;

/// <summary>Measures durations of files whose duration is not known yet (WAV header, ffprobe).</summary>
public interface IDurationProbe
{
    /// <summary>One result per path, in order: a duration in seconds, or an error saying why not.</summary>
    Task<IReadOnlyList<(double? Duration, string? Error)>> ProbeManyAsync(IReadOnlyList<string> fullPaths, CancellationToken ct);
}

/// <summary>What enqueue will write: the shard plan plus every file that will not be processed and why.</summary>
public sealed record EnqueuePlan(CorpusListing Listing, ShardPlan Plan, IReadOnlyList<SkippedEntry> FailedFiles)
{
    public int FileCount => Plan.Files.Count;
    public double AudioSeconds => Plan.TotalSeconds;
    public int ShardCount => Plan.Shards.Count;
}

public static class EnqueuePlanner
{
    /// <summary>
    /// Lists <paramref name="path"/> (a JSONL manifest when it is a file, else a folder scanned
    /// recursively) and plans it: the one path `workers enqueue` and the dashboard both take.
    /// </summary>
    /// <param name="limits">Corpus:Limits (the probe applies its own copy to headers and ffprobe results); null: the defaults.</param>
    public static Task<EnqueuePlan> PlanSourceAsync(string path, IDurationProbe probe, double targetSeconds, CancellationToken ct = default, CorpusLimits? limits = null)
    {
        var listing = File.Exists(path) ? ManifestReader.Read(path, limits) : FolderScanner.Scan(path);
        return PlanAsync(listing, probe, targetSeconds, ct, limits);
    }

    /// <param name="probe">Measures files whose duration is not known (folder scans); null when every
    /// duration is given (manifests are trusted), and then an unknown one is a programming error.</param>
    /// <param name="limits">Corpus:Limits: a duration over <see cref="CorpusLimits.MaxFileSeconds"/> makes
    /// its file a failed file, and shards hold at most <see cref="CorpusLimits.MaxItemsPerShard"/> items. Null: the defaults.</param>
    public static async Task<EnqueuePlan> PlanAsync(CorpusListing listing, IDurationProbe? probe, double targetSeconds, CancellationToken ct = default, CorpusLimits? limits = null)
    {
        limits ??= CorpusLimits.Default;
        var toProbe = new List<int>();
        for (var i = 0; i < listing.Files.Count; i++)
            if (listing.Files[i].DurationSeconds is null) toProbe.Add(i);

        var durations = new double?[listing.Files.Count];
        var failed = new List<SkippedEntry>(listing.Skipped);
        for (var i = 0; i < listing.Files.Count; i++) durations[i] = listing.Files[i].DurationSeconds;
        if (toProbe.Count > 0)
        {
            var paths = toProbe.Select(i => FullPath(listing, listing.Files[i].Path)).ToList();
            if (probe is null)
                throw new InvalidOperationException($"{toProbe.Count} file(s) of '{listing.Source}' have no duration and no probe was given.");
            var results = await probe.ProbeManyAsync(paths, ct);
            for (var k = 0; k < toProbe.Count; k++)
            {
                var (d, err) = results[k];
                if (d is > 0 && double.IsFinite(d.Value)) durations[toProbe[k]] = d;
                else failed.Add(new SkippedEntry(listing.Files[toProbe[k]].Path, err ?? "no audio (duration is zero)"));
            }
        }

        var input = new List<PlanInputFile>(listing.Files.Count);
        for (var i = 0; i < listing.Files.Count; i++)
        {
            if (durations[i] is not { } d) continue;
            // A probe that knows the file's size has checked more; this ceiling holds for every source.
            if (limits.CheckDuration(d, null) is { } implausible) failed.Add(new SkippedEntry(listing.Files[i].Path, implausible));
            else input.Add(new PlanInputFile(listing.Files[i].Path, d));
        }
        if (input.Count == 0)
            throw new CorpusSourceException(
                $"None of the {listing.Files.Count} files in '{listing.Source}' could be read, so there is nothing to enqueue. " +
                $"First failure: {failed[0].Path}: {failed[0].Reason}");
        failed.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return new EnqueuePlan(listing, ShardPlanner.Plan(input, targetSeconds, limits.MaxItemsPerShard), failed);
    }

    public static string FullPath(CorpusListing listing, string path) =>
        Path.IsPathRooted(path) ? path : Path.Combine(listing.RootDir, path);
}
