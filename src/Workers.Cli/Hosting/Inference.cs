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

    public static (VadOptions Vad, OnnxSessionOptions Session) Options(CliContext ctx, WorkerOptions worker, int threads)
    {
        var section = ctx.Configuration.GetSection("Pipelines:" + worker.Pipeline);
        if (!section.Exists() && worker.Pipeline != "vad")
            throw new ArgumentException($"Pipeline '{worker.Pipeline}' is not configured (no Pipelines:{worker.Pipeline} section in appsettings.json).");
        var vad = new VadOptions();
        section.Bind(vad);
        worker.BatchSize = section.GetValue("BatchSize", worker.BatchSize);
        worker.Model = section.GetValue("Model", worker.Model) ?? worker.Model;
        var session = SessionOptions(ctx);
        session.IntraOpThreads = threads;
        OptionsValidationException.ThrowIfAny(vad.Validate().Concat(session.Validate()).Concat(worker.Validate()));
        return (vad, session);
    }
}
