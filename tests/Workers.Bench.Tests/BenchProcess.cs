using System.Diagnostics;
using Workers.Testing;

namespace Workers.Bench.Tests;

/// <summary>Runs the real `workers-bench` (the built workers-bench.dll beside this test assembly) as a
/// child process, as <see cref="WorkersProcess"/> runs `workers`; past the limit it is killed with
/// its children (the nodes a soak started) and this throws.</summary>
public static class BenchProcess
{
    public static async Task<WorkersProcess.Result> RunAsync(IReadOnlyDictionary<string, string?> env, TimeSpan limit, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "workers-bench.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("ConnectionStrings__Workers");
        foreach (var (key, value) in env)
            if (value is null) psi.Environment.Remove(key); else psi.Environment[key] = value;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"workers-bench {string.Join(' ', args)} did not finish in {limit.TotalMinutes:0.#} minutes");
        }
        return new WorkersProcess.Result(p.ExitCode, await stdout, await stderr);
    }
}
