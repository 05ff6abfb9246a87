namespace Workers.Core.Corpora;

/// <summary>A file found in a corpus: path as stored (relative to the root for folders), and its
/// duration when already known (manifests are trusted; folders are probed).</summary>
public readonly record struct SourceFile(string Path, double? DurationSeconds);

/// <summary>Something that was found but will not be processed, and why (a skipped symlink, a
/// file that could not be probed).</summary>
public readonly record struct SkippedEntry(string Path, string Reason);

/// <summary>What a folder scan or manifest read produced.</summary>
public sealed record CorpusListing(string Kind, string Source, string RootDir, IReadOnlyList<SourceFile> Files, IReadOnlyList<SkippedEntry> Skipped);

/// <summary>The corpus source cannot be used at all (missing path, empty folder, bad manifest).
/// The message says what is wrong and what to do.</summary>
public sealed class CorpusSourceException(string message) : Exception(message);
