using System.CommandLine;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Workers.Audio;
using Workers.Cli.Hosting;
using Workers.Core.Naming;
using Workers.Core.Options;
using Workers.Fleet.Gpus;
using Workers.Fleet.Housekeeping;
using Workers.Fleet.Supervisor;
using Workers.Onnx;
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
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync<Handler>((h, ct) => h.RunAsync(new Request(pr.GetValue(gpus), pr.GetValue(perGpu), pr.GetValue(cpuWorkers),
            pr.GetValue(threads), pr.GetValue(queues)!, pr.GetValue(untilIdle)), ct), ct, services =>
        {
            // Validated here, at start, though the worker processes read them: a bad value fails `run` once, not every slot.
            AddLauncher(services);
            services.AddSettings<AudioDecoderOptions>(AudioSettings.Section, AudioSettings.Problems);
            services.AddSettings<RetentionOptions>(RetentionOptions.Section, o => o.Validate());
            services.AddSupervisorHousekeeping();
        }));
        return cmd;
    }

    /// <summary>What <see cref="Launcher"/> needs besides the host's services (Fleet, Fleet:Restart, Inference; checked on start) and itself.</summary>
    public static void AddLauncher(IServiceCollection services)
    {
        services.AddSettings<FleetOptions>(FleetOptions.Section, o => o.Validate());
        services.AddSettings<RestartPolicy>(RestartPolicy.Section, o => o.Validate());
        services.AddInference();
        services.TryAddTransient<Launcher>();
    }

    public sealed record Request(string? Gpus, int PerGpu, int? CpuWorkers, int? Threads, string Queues, bool UntilIdle);

    /// <summary>`workers run`: finds the GPUs, plans the node's slots and runs them through the <see cref="Launcher"/>.</summary>
    public sealed class Handler(Launcher launcher, WorkersDatabase database, IOptions<FleetOptions> fleet, GpuTelemetryService.Plan telemetry,
        ILogger<NodeSupervisor> log)
    {
        public async Task<int> RunAsync(Request req, CancellationToken ct)
        {
            var selection = GpuSelection.Parse(req.Gpus);
            var smi = fleet.Value.NvidiaSmi is { Length: > 0 } s ? s : NvidiaSmi.DefaultPath;
            var found = selection.Mode == GpuSelectionMode.None ? new GpuQueryResult([], null, []) : await NvidiaSmi.QueryAsync(smi, ct);
            LogFound(log, selection, smi, found);
            var chosen = selection.Resolve(found);
            var cpu = req.CpuWorkers ?? (chosen.Count > 0 ? 0 : 1);
            if (chosen.Count == 0 && cpu == 0)
                throw new ArgumentException("Nothing to run: no GPUs ("
                    + (selection.Mode == GpuSelectionMode.None ? "--gpus none" : found.Problem ?? "nvidia-smi reports none")
                    + ") and --cpu-workers 0. Give --cpu-workers N, or fix nvidia-smi (Fleet:NvidiaSmi names its path).");
            var plan = NodeSlotPlan.Create(chosen, req.PerGpu, cpu, req.Threads, Environment.ProcessorCount);

            // A CPU slot next to GPU slots, or on a node told --gpus none, is CPU by intent: asking it
            // for CUDA would only log a misleading fallback. Where auto found no GPU, CPU slots keep the
            // configured provider, so a GPU node with a broken driver says loudly in every worker why.
            var cpuProvider = chosen.Count > 0 || selection.Mode == GpuSelectionMode.None ? "cpu" : launcher.ConfiguredProvider;
            log.LogInformation("Node plan: {GpuSlots} GPU worker(s) ({PerGpu} per GPU on {Gpus}), {CpuSlots} CPU worker(s), {Threads} core(s) each; GPU provider {GpuProvider}, CPU provider {CpuProvider}",
                plan.GpuSlots, req.PerGpu, chosen.Count == 0 ? "none" : string.Join(",", chosen.Select(g => g.Index)),
                plan.CpuSlots, plan.Threads, launcher.ConfiguredProvider, cpuProvider);

            await database.OpenWhenUpAsync(ct); // migrate and start the local cluster once, before the workers race to
            // GPU telemetry (a housekeeping service of this process) samples while GPU slots run.
            telemetry.HasGpuSlots(plan.GpuSlots > 0);
            return await launcher.RunWorkersAsync(plan, cpuProvider, req.Queues, req.UntilIdle, ct);
        }
    }

    /// <summary>Starts a node's worker processes under a <see cref="NodeSupervisor"/> (`run`, and CPU workers for `demo` and the benches).</summary>
    public sealed class Launcher(WorkersDatabase database, IOptions<FleetOptions> fleet, IOptions<RestartPolicy> restart, IOptions<OnnxSessionOptions> inference,
        TimeProvider time, ILogger<NodeSupervisor> log)
    {
        /// <summary>Inference:ExecutionProvider as configured: auto, cuda or cpu.</summary>
        public string ConfiguredProvider => inference.Value.ProviderName();

        /// <summary>CPU workers only (demo, bench): <paramref name="workers"/> slots with the configured provider.</summary>
        /// <param name="workersDll">The workers.dll the worker processes run (the bench's <c>--workers</c>: a node's
        /// published build); null: this process's own.</param>
        public Task<int> RunWorkersAsync(int workers, int threads, string queues, bool untilIdle, CancellationToken ct, string? workersDll = null) =>
            RunWorkersAsync(NodeSlotPlan.Create([], 1, workers, threads, Environment.ProcessorCount), ConfiguredProvider, queues, untilIdle, ct, workersDll);

        public async Task<int> RunWorkersAsync(NodeSlotPlan plan, string cpuProvider, string queues, bool untilIdle, CancellationToken ct, string? workersDll = null)
        {
            // The name rule enqueue uses: a queue no corpus can be enqueued to would idle forever.
            foreach (var q in queues.Split(',')) Names.CheckedQueue(q, "--queues");
            var (exe, prefix) = workersDll is null ? Self() : ("dotnet", [workersDll]);
            var gpuProvider = ConfiguredProvider;
            var slots = plan.Slots.Select(s => new WorkerSlot(s.Index,
                [
                    "worker", "--slot", s.Index.ToString(CultureInfo.InvariantCulture), "--threads", plan.Threads.ToString(CultureInfo.InvariantCulture),
                    "--queues", queues,
                    .. s.Gpu is { } g ? new[] { "--gpu", g.Index.ToString(CultureInfo.InvariantCulture), "--gpu-uuid", g.Uuid, "--gpu-name", g.Name } : [],
                    .. untilIdle ? new[] { "--until-idle" } : [],
                ],
                NodeSlotPlan.Environment(s, gpuProvider, cpuProvider))).ToList();
            var node = fleet.Value.Node;
            var tempRoot = fleet.Value.TempRoot is { Length: > 0 } t ? t : new Workers.Fleet.Worker.WorkerOptions().TempRoot;
            // Folders of this node's workers that died (SIGKILL, OOM killer, power loss) before cleaning up.
            Workers.Fleet.Worker.TempFolders.SweepDead(tempRoot, node, log);
            var db = await database.OpenWhenUpAsync(ct);
            var registry = new WorkerRegistry(db, time);
            var supervisor = new NodeSupervisor(exe, prefix, restart.Value, time, log)
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
    }

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

    /// <summary>How to start `workers` (worker children, soak nodes): the apphost, or `dotnet workers.dll`.
    /// The dll is this assembly, not the entry one: the benches (bench/Workers.Bench, their own
    /// executable) call into this code and start `workers`, not themselves.</summary>
    public static (string Exe, IReadOnlyList<string> Prefix) Self()
    {
        var process = Environment.ProcessPath!;
        var dll = typeof(RunCommand).Assembly.Location;
        var name = Path.GetFileNameWithoutExtension(process);
        if (name == "dotnet") return (process, [dll]);
        return name == Path.GetFileNameWithoutExtension(dll) ? (process, []) : ("dotnet", [dll]);
    }
}
