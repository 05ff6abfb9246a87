using System.Diagnostics;
using System.Globalization;

namespace Workers.Testing;

/// <summary>The real ffprobe's reading of a file: the reference the in-process header readers are held to.</summary>
public static class Ffprobe
{
    /// <summary>The container's duration and the first audio stream's rate and channels, as ffprobe prints them.</summary>
    public static (double Seconds, int SampleRate, int Channels) Format(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("ffprobe", ["-v", "error", "-select_streams", "a:0", "-show_entries",
            "stream=sample_rate,channels:format=duration", "-of", "default=nw=1", path]) { RedirectStandardOutput = true })!;
        var fields = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=')).ToDictionary(f => f[0], f => f[1]);
        p.WaitForExit();
        return (double.Parse(fields["duration"], CultureInfo.InvariantCulture), int.Parse(fields["sample_rate"], CultureInfo.InvariantCulture),
            int.Parse(fields["channels"], CultureInfo.InvariantCulture));
    }
}
