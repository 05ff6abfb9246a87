namespace Workers.Onnx;

/// <summary>How <see cref="ModelFetcher"/> gets package tarballs.</summary>
public sealed class ModelFetcherOptions
{
    /// <summary>Where <c>npm pack</c> leaves tarballs; they are kept, so a later fetch (or another
    /// models root) extracts without downloading again. Null means <c>.cache/npm</c> under the models root.</summary>
    /// <value>The default value is null.</value>
    public string? CacheDirectory { get; set; }

    /// <summary>The npm client to run.</summary>
    /// <value>The default value is <c>npm</c> (from PATH).</value>
    public string NpmCommand { get; set; } = "npm";
}

/// <summary>What <see cref="ModelFetcher"/> did for one entry.</summary>
public enum ModelFetchOutcome
{
    /// <summary>The file was there with the right sha256; nothing was touched.</summary>
    AlreadyPresent,

    /// <summary>The file was missing and is now in place.</summary>
    Fetched,

    /// <summary>The file had the wrong sha256 and was replaced.</summary>
    Replaced,
}

/// <summary>One entry's fetch result.</summary>
public sealed record ModelFetchResult(ModelEntry Entry, string Path, ModelFetchOutcome Outcome);
