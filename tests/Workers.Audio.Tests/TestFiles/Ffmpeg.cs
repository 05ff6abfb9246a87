using System.Diagnostics;

namespace Workers.Audio.Tests.TestFiles;

/// <summary>Runs the real ffmpeg to make test files.</summary>
public static class Ffmpeg
{
    public static void Run(params string[] arguments)
    {
        var startInfo = new ProcessStartInfo("ffmpeg") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in (string[])["-nostdin", "-v", "error", "-y", .. arguments])
            startInfo.ArgumentList.Add(a);
        using var process = Process.Start(startInfo)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        stdout.Wait();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"ffmpeg {string.Join(' ', arguments)} failed ({process.ExitCode}): {stderr}");
    }
}
