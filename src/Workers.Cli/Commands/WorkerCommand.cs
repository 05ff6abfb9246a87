using System.CommandLine;
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
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync<Handler>((h, ct) => h.RunAsync(new Request(pr.GetValue(slot), pr.GetValue(gpu), pr.GetValue(gpuUuid),
            pr.GetValue(gpuName), pr.GetValue(threads), pr.GetValue(queues)!, pr.GetValue(untilIdle)), ct), ct, services =>
        {
            services.AddSettings<FleetOptions>(FleetOptions.Section, o => o.Validate());
            services.AddSettings<AudioDecoderOptions>(AudioSettings.Section, AudioSettings.Problems);
            services.AddSettings<RetentionOptions>(RetentionOptions.Section, o => o.Validate());
            services.AddInference();
            // The pipelines this worker serves (Fleet:Pipelines), and the default one it always loads, checked before anything loads.
            PipelinesOptions.Register(services, o => o.ServedProblems());
            services.AddWorkerProcessHousekeeping();
        }));
        return cmd;
    }

    public sealed record Request(int Slot, string? Gpu, string? GpuUuid, string? GpuName, int Threads, string Queues, bool UntilIdle);

    /// <summary>
    /// One worker process: the Fleet, Audio, Inference and Pipelines settings (validated when the host started), the models
    /// folder, the database, the clock, and the logger factory (the attempt log is added to it as a provider, so every
    /// line any category logs during an attempt is kept with it). Categories "Worker" and "OnnxRuntime" are the names the
    /// attempt log tails have always shown.
    /// </summary>
    public sealed class Handler(IOptions<FleetOptions> fleetOptions, IOptions<AudioDecoderOptions> decoderOptions, IOptions<OnnxSessionOptions> inference,
        IOptions<PipelinesOptions> pipelineOptions, IOptions<QueueOptions> queue, ModelFolder models, WorkersDatabase database,
        RegistryHeartbeat.Target heartbeat, ILoggerFactory loggers, TimeProvider time)
    {
        public async Task<int> RunAsync(Request req, CancellationToken ct)
        {
            var fleet = fleetOptions.Value;
            var decoder = decoderOptions.Value;
            var pipelines = pipelineOptions.Value;
            // Every line this process logs during a shard attempt (any category, any thread) is kept
            // in a small ring and stored with the attempt's outcome (shard_attempts.log_tail).
            var attemptLog = new AttemptLog();
            loggers.AddProvider(attemptLog);
            var log = loggers.CreateLogger("Worker");
            var main = pipelines.Get(PipelinesOptions.Default);
            // --threads is the worker's share of the node's cores: decoder threads plus intra-op threads.
            var cores = Math.Max(1, req.Threads);
            var (decoderThreads, intraOp) = new WorkerOptions { DecoderThreads = fleet.DecoderThreads, Gpu = req.Gpu }.SplitCores(cores);
            // A copy: the validated options stay as configured; this worker's share of the cores is its own.
            var sessionOptions = inference.Value.Clone();
            sessionOptions.IntraOpThreads = intraOp;
            var worker = new WorkerOptions
            {
                Slot = req.Slot,
                Gpu = req.Gpu,
                GpuUuid = req.GpuUuid,
                GpuName = req.GpuName,
                Queues = [.. req.Queues.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(q => Names.CheckedQueue(q, "--queues"))],
                UntilIdle = req.UntilIdle,
                ModelsRoot = models.Root,
                Node = fleet.Node,
                TempRoot = fleet.TempRoot is { Length: > 0 } temp ? temp : new WorkerOptions().TempRoot,
                MinFreeDiskMb = fleet.MinFreeDiskMb,
                DrainSeconds = fleet.DrainSeconds,
                DecoderThreads = fleet.DecoderThreads,
                MaxDecodedMb = fleet.MaxDecodedMb,
                MaxDecodedInMemoryMb = fleet.MaxDecodedInMemoryMb,
                DecodeGroupSeconds = fleet.DecodeGroupSeconds,
                Cores = cores,
                Threads = sessionOptions.IntraOpThreads,
                BatchSize = main.BatchSize,
                Model = main.Model,
            };
            OptionsValidationException.ThrowIfAny(worker.Validate());
            // The pin as this process actually sees it: `workers run` sets CUDA_VISIBLE_DEVICES per slot.
            var cuda = Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES") is { } v ? $"'{v}'" : "(unset)";
            if (worker.Gpu is { } g)
                log.LogInformation("Worker slot {Slot} starting on GPU {Gpu} ({Uuid}, {Name}); CUDA_VISIBLE_DEVICES={CudaVisibleDevices}",
                    worker.Slot, g, worker.GpuUuid ?? "uuid unknown", worker.GpuName ?? "name unknown", cuda);
            else
                log.LogInformation("Worker slot {Slot} starting on CPU; CUDA_VISIBLE_DEVICES={CudaVisibleDevices}", worker.Slot, cuda);

            // The database opens (and migrations are checked) while the models load: start-up is the longer of the two, not
            // their sum. Opening it starts this process's housekeeping (lease rescuer, retention pruner), which waits for it.
            var opening = database.OpenWhenUpAsync(ct);
            _ = opening.ContinueWith(t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default); // a model that fails to load ends the process first

            // Warm once: library, session, tensors. A GPU slot that lands on CPU says so loudly here.
            var catalog = models.Catalog();
            var env = OrtEnvironment.Load();
            using var forward = env.ForwardTo(loggers.CreateLogger("OnnxRuntime"));
            using var session = OnnxSession.Create(env, catalog.Resolve(worker.Model, worker.ModelsRoot), sessionOptions, log);
            using var model = new SileroVadModel(session, worker.BatchSize);
            log.LogInformation("ONNX Runtime {Version} from {Library}; model {Model}; provider {Provider}; batch {Batch}; {Cores} core(s): {Decoders} decoder thread(s), {Threads} intra-op thread(s)",
                env.Version, env.LibraryPath, worker.Model, session.ExecutionProvider, worker.BatchSize, worker.Cores, decoderThreads, sessionOptions.IntraOpThreads);

            // Every pipeline this worker serves, with its model stages loaded and warmed, before claiming anything.
            using var loader = new PipelineLoader(pipelines, catalog, worker.ModelsRoot, log);
            loader.Share(worker.Model, worker.BatchSize, session, model);
            var served = loader.Load(new OnnxEnvironmentAndOptions(env, sessionOptions), sessionOptions.IntraOpThreads);
            log.LogInformation("Serving pipelines {Pipelines}", string.Join(", ", served.Select(p => p.Stages.Count == 0 ? p.Name : $"{p.Name} ({string.Join(" -> ", p.Stages.Select(s => s.Name))})")));

            var db = await opening;
            await using var listener = new ShardNotificationListener(db);
            var shardWorker = new ShardWorker(new ShardQueue(db, queue.Value, time), listener, new WorkerRegistry(db, time), worker, main.Vad, model,
                session.ExecutionProvider, time, log, attemptLog, decoder, served);
            heartbeat.Attach(shardWorker);
            return await shardWorker.RunAsync(ct);
        }
    }
}
