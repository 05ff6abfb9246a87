namespace Workers.Audio;

/// <summary>
/// The external decoder (ffmpeg) exited unsuccessfully. Callers decide by <see cref="ExitCode"/> and
/// <see cref="Signal"/>, never by the message: a file ffmpeg rejects exits with a small code (1) and
/// fails the same way every time; an ffmpeg that was killed or crashed (a signal) may well decode
/// the same file on a second try. Still an <see cref="AudioFormatException"/>, so everything that
/// records a bad file against the file keeps doing so.
/// </summary>
public sealed class DecoderExitException : AudioFormatException
{
    /// <summary>Exit codes above this are 128 + the number of the signal that ended the process
    /// (what .NET's <c>Process.ExitCode</c> reports for a signalled child on Unix, like a shell).</summary>
    private const int SignalBase = 128;

    /// <summary>Highest signal number on Linux (SIGRTMAX).</summary>
    private const int MaxSignal = 64;

    public DecoderExitException(string path, string tool, int exitCode, string toolOutput)
        : base(path, $"{tool} exited with code {exitCode}: " + (toolOutput.Length > 0 ? toolOutput : "(no message)"), toolOutput)
    {
        Tool = tool;
        ExitCode = exitCode;
        Signal = exitCode is > SignalBase and <= SignalBase + MaxSignal ? exitCode - SignalBase : null;
    }

    /// <summary>The decoder that failed, e.g. <c>ffmpeg</c>.</summary>
    public string Tool { get; }

    /// <summary>The process's exit code as .NET reports it: the code it exited with, or 128 + the
    /// signal that killed it.</summary>
    public int ExitCode { get; }

    /// <summary>The signal that ended the decoder (9 for SIGKILL, 11 for SIGSEGV), or null when it exited
    /// by itself. ffmpeg catches SIGINT and SIGTERM and then exits with 255 on its own: that is not a
    /// signal here, though <see cref="ExitCode"/> is then above 128 too.</summary>
    public int? Signal { get; }
}
