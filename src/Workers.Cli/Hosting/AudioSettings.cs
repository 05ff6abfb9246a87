using Workers.Audio;

namespace Workers.Cli.Hosting;

/// <summary>The <c>Audio</c> section's problems with their full setting names (AudioDecoderOptions.Validate throws one
/// message without the section), for the one validation path (<see cref="Settings"/>).</summary>
public static class AudioSettings
{
    public const string Section = "Audio";

    public static IEnumerable<string> Problems(AudioDecoderOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.FfmpegPath))
            yield return "Audio:FfmpegPath must name the ffmpeg executable (a path, or a name on the PATH).";
        if (o.ReadTimeout <= TimeSpan.Zero && o.ReadTimeout != Timeout.InfiniteTimeSpan)
            yield return $"Audio:ReadTimeout must be a positive duration such as 00:01:00, or -00:00:00.001 for none (is {o.ReadTimeout}).";
    }
}
