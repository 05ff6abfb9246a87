namespace Workers.Audio;

/// <summary>
/// A file that cannot be read as audio: not the format it claims, malformed, or rejected by
/// ffmpeg. This is a per-file failure (record it against the file and go on), as opposed
/// to I/O or environment errors, which surface as their own exception types.
/// </summary>
public class AudioFormatException : Exception
{
    public AudioFormatException(string path, string reason, string? toolOutput = null, Exception? innerException = null)
        : base($"{path}: {reason}", innerException)
    {
        Path = path;
        Reason = reason;
        ToolOutput = toolOutput;
    }

    /// <summary>The file that failed.</summary>
    public string Path { get; }

    /// <summary>What is wrong with it, without the path (e.g. "truncated WAV header").</summary>
    public string Reason { get; }

    /// <summary>The tail of ffmpeg's stderr when ffmpeg rejected the file; otherwise null.</summary>
    public string? ToolOutput { get; }
}
