using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;

namespace Workers.Audio;

/// <summary>Starting ffmpeg and ffprobe, and the wording of what goes wrong with them.</summary>
internal static class ExternalTool
{
    private const int ENOENT = 2;

    /// <summary>
    /// Starts <paramref name="executable"/> with its arguments passed one by one (never
    /// through a shell), stdin closed and stdout and stderr redirected.
    /// </summary>
    /// <returns>The process, or null with <paramref name="error"/> saying why it could not start.</returns>
    public static Process? TryStart(string executable, IEnumerable<string> arguments, out string? error)
    {
        var startInfo = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
            startInfo.ArgumentList.Add(argument);

        try
        {
            var process = Process.Start(startInfo)!;
            process.StandardInput.Close();
            error = null;
            return process;
        }
        catch (Win32Exception e)
        {
            string name = Path.GetFileName(executable);
            error = e.NativeErrorCode == ENOENT
                ? $"{name} not found: install the Debian package ffmpeg" + (name == executable ? "" : $" (looked for '{executable}')")
                : $"{name} could not be started ('{executable}'): {e.Message}";
            return null;
        }
    }

    /// <summary>Kills the process if it still runs and waits for it (SIGKILL is prompt: 5 s at most); never throws.</summary>
    public static void KillAndReap(Process process)
    {
        if (process.HasExited) return;
        KillQuietly(process);
        process.WaitForExit(5000);
    }

    /// <summary>Kills the process if it still runs; never throws.</summary>
    public static void KillQuietly(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
        catch (Win32Exception)
        {
            // Exited between the check and the signal.
        }
    }

    /// <summary>
    /// A path as an ffmpeg input: absolute and behind the file: protocol, so that names
    /// such as "-", "pipe:x" or "http:x" are read as the local files they are.
    /// </summary>
    public static string InputUrl(string path) => "file:" + Path.GetFullPath(path);

    /// <summary>Seconds as ffmpeg reads them: invariant, no exponent, no rounding surprises.</summary>
    public static string Seconds(decimal seconds) => seconds.ToString(CultureInfo.InvariantCulture);

    public static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);

    public static string FirstLine(string text)
    {
        foreach (var line in text.AsSpan().EnumerateLines())
        {
            var trimmed = line.Trim();
            if (!trimmed.IsEmpty)
                return trimmed.ToString();
        }
        return "";
    }
}
