namespace Workers.Testing;

/// <summary>Shell scripts standing in for a tool: a real ffmpeg that counts its starts, or a fake that hangs.</summary>
public static class Scripts
{
    /// <summary>Writes <paramref name="body"/> as an executable <c>/bin/sh</c> script at <paramref name="path"/>.</summary>
    public static string Write(string path, string body)
    {
        File.WriteAllText(path, "#!/bin/sh\n" + body);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>An ffmpeg in <paramref name="dir"/> that logs one line per start to <paramref name="log"/>, then runs the real one.</summary>
    public static string CountingFfmpeg(string dir, out string log)
    {
        log = Path.Combine(dir, "ffmpeg-starts.log");
        return Write(Path.Combine(dir, "ffmpeg"), $"echo \"$@\" >> '{log}'\nexec ffmpeg \"$@\"\n");
    }

    /// <summary>How many times the ffmpeg of <see cref="CountingFfmpeg"/> started.</summary>
    public static int Starts(string log) => File.Exists(log) ? File.ReadAllLines(log).Length : 0;
}
