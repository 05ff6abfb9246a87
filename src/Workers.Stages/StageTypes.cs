namespace Workers.Stages;

/// <summary>A segment's audio handed to a stage: 16 kHz mono float samples.</summary>
public readonly record struct StageSegment(int Id, ReadOnlyMemory<float> Samples);

/// <summary>One stage's result for one segment: per kept output (in <see cref="ModelStage.Outputs"/> order), the row's
/// values, or for an output kept as text (<see cref="StageOutputOptions.IsText"/>) no values and its text in <see cref="Texts"/>.</summary>
public sealed record StageResult(int Segment, float[][] Values, string?[]? Texts = null)
{
    /// <summary>The text of output <paramref name="output"/>, or null when that output is not kept as text.</summary>
    public string? Text(int output) => Texts is { } t && output < t.Length ? t[output] : null;
}

/// <summary>Where a stage's session runs: CUDA device (or none: CPU), and whether the session was made with
/// the CUDA provider's <c>enable_cuda_graph</c>. With CUDA graphs the stage gives every batch a fixed shape
/// (<see cref="ModelStageOptions.Buckets"/>, defaulting to <see cref="ModelStageOptions.DefaultBuckets"/>),
/// runs each bucket under its own graph id, keeps each bucket's device buffers for its life, and runs
/// anything else (a long segment alone) with graphs off for that run.</summary>
public sealed record StageDevice(int CudaDeviceId = -1, bool CudaGraphs = false)
{
    public static readonly StageDevice Cpu = new();

    public bool Cuda => CudaDeviceId >= 0;
}

/// <summary>The padded shape of one batch as the model got it: rows x length (samples, or frames for fbank).</summary>
public readonly record struct StageBatchShape(int Rows, int Length, bool Bucketed);

/// <summary>A stage cannot run as configured (model and configuration disagree); raised at start-up, before claiming.</summary>
public sealed class StageConfigurationException(string message, Exception? inner = null) : Exception(message, inner);
