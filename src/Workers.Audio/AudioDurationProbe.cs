using Workers.Core.Corpora;
using Workers.Core.Options;

namespace Workers.Audio;

/// <summary>Durations from WAV headers, everything else through ffprobe, in parallel (`workers enqueue` and the dashboard's enqueue form).</summary>
/// <param name="limits">Corpus:Limits applied to every header and ffprobe result; null: the defaults.</param>
public sealed class AudioDurationProbe(CorpusLimits? limits = null) : IDurationProbe
{
    public async Task<IReadOnlyList<(double? Duration, string? Error)>> ProbeManyAsync(IReadOnlyList<string> fullPaths, CancellationToken ct)
    {
        var results = await new AudioProber(limits: limits).ProbeManyAsync(fullPaths, 0, ct);
        return results.Select(r => (r.DurationSeconds, r.Error)).ToList();
    }
}
