using Workers.Core.Corpora;

namespace Workers.Audio;

/// <summary>Durations from WAV headers, everything else through ffprobe, in parallel (`workers enqueue` and the dashboard's enqueue form).</summary>
public sealed class AudioDurationProbe : IDurationProbe
{
    public async Task<IReadOnlyList<(double? Duration, string? Error)>> ProbeManyAsync(IReadOnlyList<string> fullPaths, CancellationToken ct)
    {
        var results = await new AudioProber().ProbeManyAsync(fullPaths, 0, ct);
        return results.Select(r => (r.DurationSeconds, r.Error)).ToList();
    }
}
