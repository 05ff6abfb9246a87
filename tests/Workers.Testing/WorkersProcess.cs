using System.Diagnostics;

namespace Workers.Testing;

/// <summary>Runs the real `workers` executable (the built workers.dll) as a child process. The test
/// project must reference src/Workers.Cli, so that workers.dll lands in its output folder.</summary>
public static class WorkersProcess
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{StdOut}\nstderr:\n{StdErr}";
    }

    /// <summary>`workers run` with one CPU worker until the queue is idle: what most process tests run.</summary>
    public static readonly string[] RunOneCpuWorkerUntilIdle = ["run", "--gpus", "none", "--cpu-workers", "1", "--until-idle"];

    /// <summary>The environment of a `workers` child against a test database: its connection string,
    /// the fetched models, a temp root of its own and 1 s polling; <paramref name="extra"/> adds or overrides keys.</summary>
    public static Dictionary<string, string?> Env(string connectionString, string tempRoot, params (string Key, string? Value)[] extra)
    {
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Workers"] = connectionString,
            ["Models__Root"] = Models.Root,
            ["Fleet__TempRoot"] = tempRoot,
            ["Queue__PollSeconds"] = "1",
        };
        foreach (var (key, value) in extra) env[key] = value;
        return env;
    }

    /// <summary>Starts `workers` and returns at once; its output goes to this process's (inherited).</summary>
    public static Process Start(IReadOnlyDictionary<string, string?> env, params string[] args)
    {
        var psi = Info(env, args);
        psi.RedirectStandardOutput = false;
        psi.RedirectStandardError = false;
        var p = Process.Start(psi)!;
        p.StandardInput.Close();
        return p;
    }

    /// <summary>Starts `workers` with stdout and stderr appended to <paramref name="logFile"/>, and returns at once.</summary>
    public static Process StartLogged(IReadOnlyDictionary<string, string?> env, string logFile, params string[] args)
    {
        var p = Process.Start(Info(env, args))!;
        p.StandardInput.Close();
        var writer = new StreamWriter(logFile, append: true) { AutoFlush = true };
        var gate = new object();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (gate) writer.WriteLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (gate) writer.WriteLine(e.Data); };
        p.Exited += (_, _) => { p.WaitForExit(); lock (gate) writer.Dispose(); };
        p.EnableRaisingEvents = true;
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    public static Task<Result> RunAsync(IReadOnlyDictionary<string, string?> env, params string[] args) =>
        RunAsync(env, TimeSpan.FromMinutes(3), args);

    /// <summary>Runs `workers` to its end; past <paramref name="limit"/> it is killed (with its children) and this throws.</summary>
    public static Task<Result> RunAsync(IReadOnlyDictionary<string, string?> env, TimeSpan limit, params string[] args) =>
        RunDllAsync("workers.dll", env, limit, args);

    /// <summary>Runs another executable of the project beside this test assembly (e.g. workers-bench.dll) the same way.</summary>
    public static async Task<Result> RunDllAsync(string dll, IReadOnlyDictionary<string, string?> env, TimeSpan limit, params string[] args)
    {
        using var p = Process.Start(Info(env, args, dll))!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { p.Kill(entireProcessTree: true); throw new TimeoutException($"{Path.GetFileNameWithoutExtension(dll)} {string.Join(' ', args)} did not finish in {limit.TotalMinutes:0.#} minutes"); }
        return new Result(p.ExitCode, await stdout, await stderr);
    }

    private static ProcessStartInfo Info(IReadOnlyDictionary<string, string?> env, string[] args, string dll = "workers.dll")
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, dll));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("ConnectionStrings__Workers");
        foreach (var (k, v) in env)
            if (v is null) psi.Environment.Remove(k); else psi.Environment[k] = v;
        return psi;
    }
}
