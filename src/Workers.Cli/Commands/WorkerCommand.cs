using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OptionsValidationException = Workers.Core.Options.OptionsValidationException;
using Workers.Audio;
using Workers.Cli.Hosting;
using Workers.Core.Naming;
using Workers.Core.Options;
using Workers.Fleet.Housekeeping;
using Workers.Fleet.Worker;
using Workers.Onnx;
using Workers.Pipeline.Vad;
using Workers.Postgres.Fleet;
using Workers.Postgres.Queue;

namespace Workers.Cli.Commands;

/// <summary>One worker process (started by `workers run`; hidden from help).</summary>
public static class WorkerCommand
{
    public static Command Create()
    {
        var slot = new Option<int>("--slot") { DefaultValueFactory = _ => 0 };
        var gpu = new Option<string?>("--gpu") { Description = "nvidia-smi index of the GPU this slot is pinned to (recorded with every attempt)." };
        var gpuUuid = new Option<string?>("--gpu-uuid") { Description = "That GPU's UUID (logged)." };
        var gpuName = new Option<string?>("--gpu-name") { Description = "That GPU's name (logged)." };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 1 };
        var queues = new Option<string>("--queues") { DefaultValueFactory = _ => "default" };
        var untilIdle = new Option<bool>("--until-idle");
        var cmd = new Command("worker", "Run one worker process in the foreground.") { slot, gpu, gpuUuid, gpuName, threads, queues, untilIdle };
        cmd.Hidden = true;
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync(async (services, ct) =>
        {
            var ctx = services.GetRequiredService<CliContext>();
            var fleet = services.GetRequiredService<IOptions<FleetOptions>>().Value;
            var decoder = services.GetRequiredService<IOptions<AudioDecoderOptions>>().Value;
            // Every line this process logs during a shard attempt (any category, any thread) is kept
            // in a small ring and stored with the attempt's outcome (shard_attempts.log_tail).
            var attemptLog = new AttemptLog();
            ctx.LoggerFactory.AddProvider(attemptLog);
            var log = ctx.Logger("Worker");
            var (vad, batchSize, modelName) = Inference.Pipeline(ctx, "vad");
            // --threads is the worker's share of the node's cores: decoder threads plus intra-op threads.
            var cores = Math.Max(1, pr.GetValue(threads));
            var (decoderThreads, intraOp) = new WorkerOptions { DecoderThreads = fleet.DecoderThreads, Gpu = pr.GetValue(gpu) }.SplitCores(cores);
            var sessionOptions = Inference.SessionOptions(ctx, intraOp);
            var worker = new WorkerOptions
            {
                Slot = pr.GetValue(slot),
                Gpu = pr.GetValue(gpu),
                GpuUuid = pr.GetValue(gpuUuid),
                GpuName = pr.GetValue(gpuName),
                Queues = [.. pr.GetValue(queues)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(q => Names.CheckedQueue(q, "--queues"))],
                UntilIdle = pr.GetValue(untilIdle),
                ModelsRoot = Inference.ModelsRoot(ctx),
                Node = fleet.Node,
                TempRoot = fleet.TempRoot is { Length: > 0 } temp ? temp : new WorkerOptions().TempRoot,
                MinFreeDiskMb = fleet.MinFreeDiskMb,
                DrainSeconds = fleet.DrainSeconds,
                DecoderThreads = fleet.DecoderThreads,
                MaxDecodedMb = fleet.MaxDecodedMb,
                Cores = cores,
                Threads = sessionOptions.IntraOpThreads,
                BatchSize = batchSize,
                Model = modelName,
            };
            OptionsValidationException.ThrowIfAny(worker.Validate());
            // The pin as this process actually sees it: `workers run` sets CUDA_VISIBLE_DEVICES per slot.
            var cuda = Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES") is { } v ? $"'{v}'" : "(unset)";
            if (worker.Gpu is { } g)
                log.LogInformation("Worker slot {Slot} starting on GPU {Gpu} ({Uuid}, {Name}); CUDA_VISIBLE_DEVICES={CudaVisibleDevices}",
                    worker.Slot, g, worker.GpuUuid ?? "uuid unknown", worker.GpuName ?? "name unknown", cuda);
            else
                log.LogInformation("Worker slot {Slot} starting on CPU; CUDA_VISIBLE_DEVICES={CudaVisibleDevices}", worker.Slot, cuda);

            // Warm once: library, session, tensors. A GPU slot that lands on CPU says so loudly here.
            var catalog = Inference.Catalog(ctx);
            var env = OrtEnvironment.Load();
            using var forward = env.ForwardTo(ctx.Logger("OnnxRuntime"));
            using var session = OnnxSession.Create(env, catalog.Resolve(worker.Model, worker.ModelsRoot), sessionOptions, log);
            using var model = new SileroVadModel(session, worker.BatchSize);
            log.LogInformation("ONNX Runtime {Version} from {Library}; model {Model}; provider {Provider}; batch {Batch}; {Cores} core(s): {Decoders} decoder thread(s), {Threads} intra-op thread(s)",
                env.Version, env.LibraryPath, worker.Model, session.ExecutionProvider, worker.BatchSize, worker.Cores, decoderThreads, sessionOptions.IntraOpThreads);

            // Every pipeline this worker serves, with its model stages loaded and warmed, before claiming anything.
            using var loader = new PipelineLoader(ctx, catalog, worker.ModelsRoot, log);
            loader.Share(worker.Model, worker.BatchSize, session, model);
            var pipelines = loader.Load(new OnnxEnvironmentAndOptions(env, sessionOptions), sessionOptions.IntraOpThreads);
            log.LogInformation("Serving pipelines {Pipelines}", string.Join(", ", pipelines.Select(p => p.Stages.Count == 0 ? p.Name : $"{p.Name} ({string.Join(" -> ", p.Stages.Select(s => s.Name))})")));

            // Opening the database starts this process's housekeeping (lease rescuer, retention pruner), which waits for it.
            var db = await ctx.DatabaseWhenUpAsync(ct);
            await using var listener = new ShardNotificationListener(db);
            var shardWorker = new ShardWorker(new ShardQueue(db, ctx.Queue, ctx.Time), listener, new WorkerRegistry(db, ctx.Time), worker, vad, model,
                session.ExecutionProvider, ctx.Time, log, attemptLog, decoder, pipelines);
            services.GetRequiredService<RegistryHeartbeat.Target>().Attach(shardWorker);
            return await shardWorker.RunAsync(ct);
        }, ct, services => services
            .AddSettings<FleetOptions>(FleetOptions.Section, o => o.Validate())
            .Services.AddSettings<AudioDecoderOptions>(AudioSettings.Section, AudioSettings.Problems)
            .Services.AddSettings<RetentionOptions>(RetentionOptions.Section, o => o.Validate())
            .Services.AddWorkerProcessHousekeeping()));
        return cmd;
    }
}
