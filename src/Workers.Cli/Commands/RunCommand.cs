using System.CommandLine;
using System.Reflection;
using Workers.Cli.Hosting;
using Workers.Fleet.Supervisor;

namespace Workers.Cli.Commands;

public static class RunCommand
{
    public static Command Create()
    {
        var cpuWorkers = new Option<int>("--cpu-workers") { Description = "Worker processes on CPU.", DefaultValueFactory = _ => 1 };
        var threads = new Option<int?>("--threads") { Description = "Intra-op threads per worker. Default: max(1, cores / workers)." };
        var queues = new Option<string>("--queues") { Description = "Comma-separated queues to claim from.", DefaultValueFactory = _ => "default" };
        var untilIdle = new Option<bool>("--until-idle") { Description = "Exit 0 once no shard of the queues is queued or running." };
        var cmd = new Command("run", "Run this node's worker processes (claim shards, segment them, write results).") { cpuWorkers, threads, queues, untilIdle };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync(async (ctx, ct) =>
        {
            var n = pr.GetValue(cpuWorkers);
            if (n < 1) throw new ArgumentException("--cpu-workers must be at least 1. (GPU slots, --gpus/--per-gpu, come with the fleet issue.)");
            var t = pr.GetValue(threads) ?? Math.Max(1, Environment.ProcessorCount / n);
            if (t < 1) throw new ArgumentException("--threads must be at least 1.");
            await ctx.DatabaseAsync(ct); // migrate and start the local cluster once, before the workers race to
            var wait = await RunWorkersAsync(ctx, n, t, pr.GetValue(queues)!, pr.GetValue(untilIdle), ct);
            return wait;
        }, ct));
        return cmd;
    }

    public static Task<int> RunWorkersAsync(CliContext ctx, int workers, int threads, string queues, bool untilIdle, CancellationToken ct)
    {
        var (exe, prefix) = Self();
        var slots = Enumerable.Range(0, workers).Select(i => new WorkerSlot(i,
            ["worker", "--slot", i.ToString(), "--threads", threads.ToString(), "--queues", queues, .. untilIdle ? new[] { "--until-idle" } : []],
            new Dictionary<string, string> { ["CUDA_VISIBLE_DEVICES"] = "" })).ToList();
        var supervisor = new NodeSupervisor(exe, prefix, ctx.Bind<RestartPolicy>("Fleet:Restart"), ctx.Time, ctx.Logger("Supervisor"));
        return supervisor.RunAsync(slots, untilIdle, ct);
    }

    /// <summary>How to start this same program again: the apphost, or `dotnet workers.dll`.</summary>
    private static (string Exe, IReadOnlyList<string> Prefix) Self()
    {
        var process = Environment.ProcessPath!;
        var dll = Assembly.GetEntryAssembly()!.Location;
        return Path.GetFileNameWithoutExtension(process) == "dotnet" ? (process, [dll]) : (process, []);
    }
}
