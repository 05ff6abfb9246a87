namespace Workers.Audio;

/// <summary>
/// The duration of one file, or why it has none. Exactly one of <see cref="DurationSeconds"/>
/// and <see cref="Error"/> is non-null; a duration is always positive.
/// </summary>
public sealed record AudioProbeResult(string Path, double? DurationSeconds, string? Error)
{
    public bool Succeeded => DurationSeconds is not null;

    internal static AudioProbeResult Success(string path, double seconds) => new(path, seconds, null);

    internal static AudioProbeResult Failure(string path, string error) => new(path, null, error);
}
