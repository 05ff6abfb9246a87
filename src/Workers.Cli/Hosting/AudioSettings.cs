using Workers.Audio;

namespace Workers.Cli.Hosting;

/// <summary>The <c>Audio</c> section's problems with their full setting names, for the one validation path (<see cref="Settings"/>).</summary>
public static class AudioSettings
{
    public const string Section = "Audio";

    public static IEnumerable<string> Problems(AudioDecoderOptions o) => o.Problems(Section + ":");
}
