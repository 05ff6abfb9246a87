using Microsoft.Extensions.Configuration;
using Workers.Core.Options;
using Workers.Fleet.Worker;
using Workers.Onnx;
using Workers.Pipeline.Vad;

namespace Workers.Cli.Hosting;

/// <summary>Reads the inference settings (Models, Inference, Pipelines:NAME) once, validated together.</summary>
public static class Inference
{
    public static string ModelsRoot(CliContext ctx) =>
        Path.GetFullPath(ctx.Configuration["Models:Root"] is { Length: > 0 } r ? r : "models");

    public static ModelCatalog Catalog(CliContext ctx)
    {
        var root = ModelsRoot(ctx);
        var path = Path.Combine(root, ModelCatalog.FileName);
        if (!File.Exists(path))
            throw new ArgumentException($"No {ModelCatalog.FileName} in {root}. Set Models:Root (or Models__Root) to the folder holding models.json, e.g. the repository's models/.");
        return ModelCatalog.Load(path);
    }

    /// <summary>The Inference section as session options (provider, CUDA options, threads), not yet validated.</summary>
    public static OnnxSessionOptions SessionOptions(CliContext ctx)
    {
        var session = new OnnxSessionOptions();
        ctx.Configuration.GetSection("Inference").Bind(session);
        return session;
    }

    /// <summary>The VAD settings, batch size and model of <c>Pipelines:NAME</c> (the worker's own pipeline), validated.</summary>
    public static (VadOptions Vad, int BatchSize, string Model) Pipeline(CliContext ctx, string pipeline)
    {
        var section = ctx.Configuration.GetSection("Pipelines:" + pipeline);
        if (!section.Exists() && pipeline != "vad")
            throw new ArgumentException($"Pipeline '{pipeline}' is not configured (no Pipelines:{pipeline} section in appsettings.json).");
        var defaults = new WorkerOptions();
        var vad = Settings.Read<VadOptions>(ctx.Configuration, "Pipelines:" + pipeline, v => v.Validate());
        var batch = Settings.Read<PipelineModel>(ctx.Configuration, "Pipelines:" + pipeline, m => m.BatchSize is < 1 or > 4096
            ? [$"Pipelines:{pipeline}:BatchSize must be within 1..4096 (is {m.BatchSize})."] : []);
        return (vad, batch.BatchSize, batch.Model is { Length: > 0 } m ? m : defaults.Model);
    }

    /// <summary>The Inference section with <paramref name="threads"/> intra-op threads, validated.</summary>
    public static OnnxSessionOptions SessionOptions(CliContext ctx, int threads)
    {
        var session = SessionOptions(ctx);
        session.IntraOpThreads = threads;
        OptionsValidationException.ThrowIfAny(session.Validate());
        return session;
    }

    /// <summary>The two settings of a pipeline section a worker reads besides the VAD's.</summary>
    private sealed class PipelineModel
    {
        public int BatchSize { get; init; } = 64;
        public string Model { get; init; } = "";
    }
}
