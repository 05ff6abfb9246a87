using System.Diagnostics;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// Runs the real `workers` executable as a user that file modes apply to. Tests run as root, for
/// whom a mode-000 file is readable; then `workers` runs as <c>nobody</c> (through runuser), from
/// a world-readable copy of the build output and models when <c>nobody</c> cannot read them where
/// they are. When the tests do not run as root, `workers` runs directly as this user.
/// </summary>
internal static class Unprivileged
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{StdOut}\nstderr:\n{StdErr}";
    }

    public static bool IsRoot { get; } = Environment.UserName == "root";

    /// <summary>The user `workers` runs as here.</summary>
    public static string User => IsRoot ? "nobody" : Environment.UserName;

    private static readonly Lazy<(string App, string Models)> Readable = new(FindOrCopy);

    /// <summary>The models folder the unprivileged `workers` can read (Models__Root).</summary>
    public static string ModelsRoot => Readable.Value.Models;

    /// <summary>A new empty folder anyone may enter and write (corpora, temp roots).</summary>
    public static string OpenFolder(string parent, string name)
    {
        var dir = Path.Combine(parent, name);
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_111_111);
        return dir;
    }

    /// <summary>As root, makes <paramref name="dir"/> and the folders above it enterable by others (test temp folders are 0700).</summary>
    public static void OpenPath(string dir)
    {
        if (!IsRoot) return;
        for (var d = Path.GetFullPath(dir); d != "/" && !string.IsNullOrEmpty(d); d = Path.GetDirectoryName(d)!)
        {
            var mode = File.GetUnixFileMode(d);
            if (!mode.HasFlag(UnixFileMode.OtherExecute)) File.SetUnixFileMode(d, mode | UnixFileMode.OtherExecute | UnixFileMode.OtherRead);
        }
    }

    public static async Task<Result> RunAsync(IReadOnlyDictionary<string, string?> env, TimeSpan limit, params string[] args)
    {
        var (app, _) = Readable.Value;
        var psi = new ProcessStartInfo(IsRoot ? "runuser" : "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            UseShellExecute = false, WorkingDirectory = app,
        };
        if (IsRoot) foreach (var a in new[] { "-u", "nobody", "--", "dotnet" }) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add(Path.Combine(app, "workers.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("ConnectionStrings__Workers");
        psi.Environment["HOME"] = Path.GetTempPath(); // nobody's home does not exist
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (k, v) in env)
            if (v is null) psi.Environment.Remove(k); else psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"workers {string.Join(' ', args)} (as {User}) did not finish in {limit.TotalSeconds:0} s");
        }
        return new Result(p.ExitCode, await stdout, await stderr);
    }

    private static (string App, string Models) FindOrCopy()
    {
        var app = AppContext.BaseDirectory.TrimEnd('/');
        var models = Models.Root;
        if (!IsRoot || CanRead(Path.Combine(app, "workers.dll"), Path.Combine(models, "models.json"))) return (app, models);
        // The checkout is closed to nobody (e.g. under /root): copy what `workers` needs.
        var copy = Directory.CreateTempSubdirectory("workers-unprivileged-").FullName;
        Run("cp", "-a", app, Path.Combine(copy, "app"));
        Run("cp", "-a", models, Path.Combine(copy, "models"));
        Run("chmod", "-R", "a+rX", copy);
        OpenPath(copy);
        return (Path.Combine(copy, "app"), Path.Combine(copy, "models"));
    }

    private static bool CanRead(params string[] files)
    {
        var psi = new ProcessStartInfo("runuser") { UseShellExecute = false };
        foreach (var a in new[] { "-u", "nobody", "--", "sh", "-c", "for f; do test -r \"$f\" || exit 1; done", "sh" }) psi.ArgumentList.Add(a);
        foreach (var f in files) psi.ArgumentList.Add(f);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        return p.ExitCode == 0;
    }

    private static void Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {err}");
    }
}
