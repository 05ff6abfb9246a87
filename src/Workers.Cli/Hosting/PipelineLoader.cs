using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using Workers.Core.Options;
using Workers.Onnx;
using Workers.Pipeline.Stages;
using Workers.Pipeline.Vad;
using Workers.Stages;

namespace Workers.Cli.Hosting;

/// <summary>
/// Loads, once per worker process and before it claims anything, every pipeline it serves
/// (<see cref="PipelinesOptions.Served"/>: <c>Fleet:Pipelines</c>, a comma-separated list; by default every
/// section of <c>Pipelines</c>, and <c>vad</c>; their settings validated when the host started): the VAD
/// settings and model of <c>Pipelines:NAME</c>, and the model stages of <c>Pipelines:NAME:Stages</c>, each model resolved through models.json (missing or wrong sha256:
/// an error naming <c>workers models fetch</c>), checked against the model's inputs and outputs,
/// and warmed with one run. Anything wrong stops the process here, with what to change.
/// </summary>
public sealed partial class PipelineLoader(PipelinesOptions pipelines, ModelCatalog catalog, string modelsRoot, ILogger log) : IDisposable
{
    private readonly List<IDisposable> _owned = [];
    private readonly Dictionary<(string Model, int Batch), SileroVadModel> _vadModels = [];
    private readonly Dictionary<string, OnnxSession> _vadSessions = [];

    /// <summary>A VAD session and model the caller already made (and disposes): pipelines with that model and batch size share them.</summary>
    public void Share(string model, int batchSize, OnnxSession session, SileroVadModel vadModel)
    {
        _vadSessions[model] = session;
        _vadModels[(model, batchSize)] = vadModel;
    }

    public IReadOnlyList<ShardPipeline> Load(OnnxEnvironmentAndOptions ort, int threads)
    {
        var loaded = new List<ShardPipeline>();
        // Every served pipeline's settings were validated when the host started (PipelinesOptions.ServedProblems).
        foreach (var settings in pipelines.Served.Select(pipelines.Get))
        {
            var (name, vad, model, batch) = (settings.Name, settings.Vad, settings.Model, settings.BatchSize);
            if (!_vadModels.TryGetValue((model, batch), out var vadModel))
            {
                if (!_vadSessions.TryGetValue(model, out var session))
                {
                    session = OnnxSession.Create(ort.Environment, catalog.Resolve(model, modelsRoot), ort.Session, log);
                    _vadSessions[model] = session;
                    _owned.Add(session);
                }
                vadModel = new SileroVadModel(session, batch);
                _vadModels[(model, batch)] = vadModel;
                _owned.Add(vadModel);
            }

            var stages = new List<ModelStage>();
            foreach (var o in settings.Stages)
            {
                string path;
                try { path = catalog.Resolve(o.Model, modelsRoot); }
                catch (KeyNotFoundException e) { throw new ArgumentException($"Pipelines:{name}, stage '{o.Name}': {e.Message} Add the model to models.json (see README, \"Model stages\").", e); }
                var (sessionOptions, device) = StageSessionOptions(ort.Session, threads);
                var stage = new ModelStage(path, o, sessionOptions, device);
                _owned.Add(stage);
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                stage.WarmUp();
                LogStageReady(name, o.Name, o.Model, stage.InputType.ToString(), o.BatchSeconds, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                stages.Add(stage);
            }
            loaded.Add(new ShardPipeline(name, vad, vadModel, stages));
        }
        return loaded;
    }

    /// <summary>
    /// The stage's ONNX Runtime session options (official API): the worker's intra-op threads, and
    /// CUDA when Inference:ExecutionProvider asks for it and this build carries it (auto falls back
    /// to CPU with a warning, cuda refuses to start).
    /// </summary>
    private (SessionOptions, StageDevice) StageSessionOptions(OnnxSessionOptions inference, int threads)
    {
        SessionOptions so;
        StageDevice device;
        try
        {
            so = Workers.Stages.StageSessionOptions.Create(inference.ExecutionProvider, inference.DeviceId, threads, inference.EnableCudaGraph);
            device = inference.ExecutionProvider == OnnxExecutionProvider.Cpu ? StageDevice.Cpu : new StageDevice(inference.DeviceId, inference.EnableCudaGraph);
        }
        catch (ExecutionProviderUnavailableException e) when (inference.ExecutionProvider == OnnxExecutionProvider.Auto)
        {
            LogStageOnCpu(e.Reason);
            so = Workers.Stages.StageSessionOptions.Create(OnnxExecutionProvider.Cpu, inference.DeviceId, threads);
            device = StageDevice.Cpu;
        }
        _owned.Add(so);
        return (so, device);
    }

    public void Dispose()
    {
        for (var i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
    }

    [LoggerMessage(LogLevel.Information, "Pipeline {Pipeline}: stage {Stage} ready (model {Model}, input {InputType}, BatchSeconds {BatchSeconds}); warm-up {WarmUpMs:0} ms")]
    private partial void LogStageReady(string pipeline, string stage, string model, string inputType, double batchSeconds, double warmUpMs);

    [LoggerMessage(LogLevel.Warning, "Model stages run on CPU: the CUDA provider did not load ({Reason})")]
    private partial void LogStageOnCpu(string reason);
}

/// <summary>The VAD's ONNX Runtime environment and session options, as the worker built them.</summary>
public sealed record OnnxEnvironmentAndOptions(OrtEnvironment Environment, OnnxSessionOptions Session);
