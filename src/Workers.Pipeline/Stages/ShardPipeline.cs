using Workers.Pipeline.Vad;
using Workers.Stages;

namespace Workers.Pipeline.Stages;

/// <summary>
/// A pipeline as a worker process holds it, loaded and warmed once: decode, VAD segmentation with
/// <see cref="Vad"/> and <see cref="Model"/>, then <see cref="Stages"/> in order over the segments.
/// Configured as <c>Pipelines:&lt;Name&gt;</c> (the VAD settings) with <c>Pipelines:&lt;Name&gt;:Stages</c>.
/// </summary>
public sealed class ShardPipeline(string name, VadOptions vad, IVadModel model, IReadOnlyList<ModelStage>? stages = null)
{
    public string Name { get; } = name;

    public VadOptions Vad { get; } = vad;

    public IVadModel Model { get; } = model;

    public IReadOnlyList<ModelStage> Stages { get; } = stages ?? [];
}
