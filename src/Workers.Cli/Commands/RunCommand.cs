using System.CommandLine;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Workers.Audio;
using Workers.Core.Options;
using Workers.Cli.Hosting;
using Workers.Core.Naming;
using Workers.Fleet.Gpus;
using Workers.Fleet.Housekeeping;
using Workers.Fleet.Supervisor;
using Workers.Postgres.Fleet;

namespace Workers.Cli.Commands;

public static class RunCommand
{
    public static Command Create()
    {
        var gpus = new Option<string>("--gpus") { Description = "GPUs to run on: auto (every GPU nvidia-smi reports), none, or indices such as 0,2.", DefaultValueFactory = _ => "auto" };
        var perGpu = new Option<int>("--per-gpu") { Description = "Worker processes per GPU.", DefaultValueFactory = _ => 1 };
        var cpuWorkers = new Option<int?>("--cpu-workers") { Description = "Worker processes on CPU. Default: 0 when GPUs are found, else 1." };
        var threads = new Option<int?>("--threads") { Description = "Cores per worker, shared by its decoder threads (Fleet:DecoderThreads) and intra-op threads. Default: max(1, cores / workers)." };
        var queues = new Option<string>("--queues") { Description = "Comma-separated queues to claim from.", DefaultValueFactory = _ => "default" };
        var untilIdle = new Option<bool>("--until-idle") { Description = "Exit 0 once no shard of the queues is queued or running." };
        var cmd = new Command("run", "Run this node's worker processes (claim shards, segment them, write results).") { gpus, perGpu, cpuWorkers, threads, queues, untilIdle };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync(async (services, ct) =>
        {
            var ctx = services.GetRequiredService<CliContext>();
            var log = ctx.Logger("Supervisor");
            var selection = GpuSelection.Parse(pr.GetValue(gpus));
            var smi = NvidiaSmiPath(ctx);
            var found = selection.Mode == GpuSelectionMode.None ? new GpuQueryResult([], null, []) : await NvidiaSmi.QueryAsync(smi, ct);
            LogFound(log, selection, smi, found);
            var chosen = selection.Resolve(found);
            var cpu = pr.GetValue(cpuWorkers) ?? (chosen.Count > 0 ? 0 : 1);
            if (chosen.Count == 0 && cpu == 0)
                throw new ArgumentException("Nothing to run: no GPUs ("
                    + (selection.Mode == GpuSelectionMode.None ? "--gpus none" : found.Problem ?? "nvidia-smi reports none")
                    + ") and --cpu-workers 0. Give --cpu-workers N, or fix nvidia-smi (Fleet:NvidiaSmi names its path).");
            var plan = NodeSlotPlan.Create(chosen, pr.GetValue(perGpu), cpu, pr.GetValue(threads), Environment.ProcessorCount);

            // A CPU slot next to GPU slots, or on a node told --gpus none, is CPU by intent: asking it
            // for CUDA would only log a misleading fallback. Where auto found no GPU, CPU slots keep the
            // configured provider, so a GPU node with a broken driver says loudly in every worker why.
            var cpuProvider = chosen.Count > 0 || selection.Mode == GpuSelectionMode.None ? "cpu" : ConfiguredProvider(ctx);
            log.LogInformation("Node plan: {GpuSlots} GPU worker(s) ({PerGpu} per GPU on {Gpus}), {CpuSlots} CPU worker(s), {Threads} core(s) each; GPU provider {GpuProvider}, CPU provider {CpuProvider}",
                plan.GpuSlots, pr.GetValue(perGpu), chosen.Count == 0 ? "none" : string.Join(",", chosen.Select(g => g.Index)),
                plan.CpuSlots, plan.Threads, ConfiguredProvider(ctx), cpuProvider);

            await ctx.DatabaseWhenUpAsync(ct); // migrate and start the local cluster once, before the workers race to
            // GPU telemetry (a housekeeping service of this process) samples while GPU slots run.
            services.GetRequiredService<GpuTelemetryService.Plan>().HasGpuSlots(plan.GpuSlots > 0);
            return await RunWorkersAsync(ctx, plan, cpuProvider, pr.GetValue(queues)!, pr.GetValue(untilIdle), ct);
        }, ct, services => services
            // Validated here, at start, though the worker processes read them: a bad value fails `run` once, not every slot.
            .AddSettings<FleetOptions>(FleetOptions.Section, o => o.Validate())
            .Services.AddSettings<RestartPolicy>(RestartPolicy.Section, o => o.Validate())
            .Services.AddSettings<AudioDecoderOptions>(AudioSettings.Section, AudioSettings.Problems)
            .Services.AddSettings<RetentionOptions>(RetentionOptions.Section, o => o.Validate())
            .Services.AddSupervisorHousekeeping()));
        return cmd;
    }

    /// <summary>CPU workers only (demo, bench): <paramref name="workers"/> slots with the configured provider.</summary>
    public static Task<int> RunWorkersAsync(CliContext ctx, int workers, int threads, string queues, bool untilIdle, CancellationToken ct) =>
        RunWorkersAsync(ctx, NodeSlotPlan.Create([], 1, workers, threads, Environment.ProcessorCount), ConfiguredProvider(ctx), queues, untilIdle, ct);

    public static async Task<int> RunWorkersAsync(CliContext ctx, NodeSlotPlan plan, string cpuProvider, string queues, bool untilIdle, CancellationToken ct)
    {
        // The name rule enqueue uses: a queue no corpus can be enqueued to would idle forever.
        foreach (var q in queues.Split(',')) Names.CheckedQueue(q, "--queues");
        var (exe, prefix) = Self();
        var gpuProvider = ConfiguredProvider(ctx);
        var slots = plan.Slots.Select(s => new WorkerSlot(s.Index,
            [
                "worker", "--slot", s.Index.ToString(CultureInfo.InvariantCulture), "--threads", plan.Threads.ToString(CultureInfo.InvariantCulture),
                "--queues", queues,
                .. s.Gpu is { } g ? new[] { "--gpu", g.Index.ToString(CultureInfo.InvariantCulture), "--gpu-uuid", g.Uuid, "--gpu-name", g.Name } : [],
                .. untilIdle ? new[] { "--until-idle" } : [],
            ],
            NodeSlotPlan.Environment(s, gpuProvider, cpuProvider))).ToList();
        var fleet = Fleet(ctx);
        var node = fleet.Node;
        var tempRoot = fleet.TempRoot is { Length: > 0 } t ? t : new Workers.Fleet.Worker.WorkerOptions().TempRoot;
        // Folders of this node's workers that died (SIGKILL, OOM killer, power loss) before cleaning up.
        Workers.Fleet.Worker.TempFolders.SweepDead(tempRoot, node, ctx.Logger("Supervisor"));
        var db = await ctx.DatabaseWhenUpAsync(ct);
        var registry = new WorkerRegistry(db, ctx.Time);
        var supervisor = new NodeSupervisor(exe, prefix, Settings.Read<RestartPolicy>(ctx.Configuration, RestartPolicy.Section, o => o.Validate()), ctx.Time, ctx.Logger("Supervisor"))
        {
            // A slot given up on shows in the registry (status --fleet, the dashboard), not only in this log.
            OnCrashLoop = async (slot, code, detail) =>
            {
                var planned = plan.Slots.First(s => s.Index == slot);
                var id = $"{node}/supervisor/{slot}";
                await registry.RegisterAsync(new WorkerRegistration(id, node, Environment.ProcessId, slot, planned.Gpu?.Index.ToString(CultureInfo.InvariantCulture),
                    planned.Gpu?.Uuid, planned.Gpu?.Name, "none", plan.Threads, typeof(RunCommand).Assembly.GetName().Version?.ToString() ?? "0",
                    queues.Split(',')), CancellationToken.None);
                await registry.StopAsync(id, "crash_looping", detail, CancellationToken.None);
            },
        };
        Shutdown.Immediate(supervisor.KillAll); // a second signal takes the workers down with us

        return await supervisor.RunAsync(slots, untilIdle, ct);
    }

    /// <summary>The Fleet section, validated (also for demo and bench, whose hosts do not register it).</summary>
    private static FleetOptions Fleet(CliContext ctx) => Settings.Read<FleetOptions>(ctx.Configuration, FleetOptions.Section, o => o.Validate());

    private static string NvidiaSmiPath(CliContext ctx) => Fleet(ctx).NvidiaSmi is { Length: > 0 } s ? s : NvidiaSmi.DefaultPath;

    /// <summary>Inference:ExecutionProvider as configured (auto, cuda or cpu); auto when unset.</summary>
    private static string ConfiguredProvider(CliContext ctx) =>
        ctx.Configuration["Inference:ExecutionProvider"] is { Length: > 0 } p ? p : "auto";

    private static void LogFound(ILogger log, GpuSelection selection, string smi, GpuQueryResult found)
    {
        if (selection.Mode == GpuSelectionMode.None) { log.LogInformation("GPUs: none requested (--gpus none); CPU workers only"); return; }
        if (found.Problem is not null)
        {
            if (selection.Mode == GpuSelectionMode.Auto)
                log.LogWarning("GPUs: none found: {Problem}. Running CPU workers only; set Fleet:NvidiaSmi if nvidia-smi lives elsewhere", found.Problem);
            return; // an explicit list fails with the problem in its message
        }
        foreach (var line in found.Skipped) log.LogWarning("GPUs: ignored a line of {NvidiaSmi} output: {Line}", smi, line);
        if (found.Gpus.Count == 0) log.LogWarning("GPUs: {NvidiaSmi} reports none", smi);
        foreach (var g in found.Gpus) log.LogInformation("GPU {Gpu}", g);
    }

    /// <summary>How to start this same program again: the apphost, or `dotnet workers.dll`.</summary>
    internal static (string Exe, IReadOnlyList<string> Prefix) Self()
    {
        var process = Environment.ProcessPath!;
        var dll = Assembly.GetEntryAssembly()!.Location;
        return Path.GetFileNameWithoutExtension(process) == "dotnet" ? (process, [dll]) : (process, []);
    }
}
