using Workers.Testing;

namespace Workers.Bench.Tests;

/// <summary>Runs the real `workers-bench` (the built workers-bench.dll beside this test assembly) as a
/// child process, as <see cref="WorkersProcess"/> runs `workers`; past the limit it is killed with
/// its children (the nodes a soak started) and this throws.</summary>
public static class BenchProcess
{
    public static Task<WorkersProcess.Result> RunAsync(IReadOnlyDictionary<string, string?> env, TimeSpan limit, params string[] args) =>
        WorkersProcess.RunDllAsync("workers-bench.dll", env, limit, args);
}
