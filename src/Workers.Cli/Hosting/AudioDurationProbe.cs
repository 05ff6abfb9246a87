using Workers.Audio;
using Workers.Core.Corpora;

namespace Workers.Cli.Hosting;

/// <summary>Durations from WAV headers, everything else through ffprobe, in parallel.</summary>
internal sealed class AudioDurationProbe : IDurationProbe
{
    public async Task<IReadOnlyList<(double? Duration, string? Error)>> ProbeManyAsync(IReadOnlyList<string> fullPaths, CancellationToken ct)
    {
        var results = await new AudioProber().ProbeManyAsync(fullPaths, 0, ct);
        return results.Select(r => (r.DurationSeconds, r.Error)).ToList();
    }
}
