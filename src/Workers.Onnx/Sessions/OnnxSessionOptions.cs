namespace Workers.Onnx;

/// <summary>How a session is created: provider, device and threading. Validated once when the session
/// is created (<see cref="Validate"/> lists every problem at once).</summary>
public sealed class OnnxSessionOptions
{
    /// <summary>Execution provider to use.</summary>
    /// <value>The default value is <see cref="OnnxExecutionProvider.Auto"/>.</value>
    public OnnxExecutionProvider ExecutionProvider { get; set; } = OnnxExecutionProvider.Auto;

    /// <summary>CUDA device ordinal, as the process sees it (after CUDA_VISIBLE_DEVICES).</summary>
    /// <value>The default value is 0.</value>
    public int DeviceId { get; set; }

    /// <summary>cuDNN convolution algorithm search. VAD batches change shape often, and exhaustive
    /// search re-benchmarks on every new shape, so the heuristic is the better default here.</summary>
    /// <value>The default value is <see cref="CudnnConvAlgoSearch.Heuristic"/>.</value>
    public CudnnConvAlgoSearch CudnnConvAlgoSearch { get; set; } = CudnnConvAlgoSearch.Heuristic;

    /// <summary>Cap on the CUDA provider's memory arena, in bytes; null leaves ORT's default (no cap).</summary>
    /// <value>The default value is null.</value>
    public long? GpuMemLimit { get; set; }

    /// <summary>How the CUDA provider's arena grows (<c>arena_extend_strategy</c>). With several workers
    /// per GPU, <see cref="ArenaExtendStrategy.SameAsRequested"/> keeps each one's footprint near what it uses.</summary>
    /// <value>The default value is <see cref="ArenaExtendStrategy.NextPowerOfTwo"/> (ORT's own default).</value>
    public ArenaExtendStrategy ArenaExtendStrategy { get; set; } = ArenaExtendStrategy.NextPowerOfTwo;

    /// <summary>Capture the graph as a CUDA graph on the first run and replay it (the CUDA provider's
    /// <c>enable_cuda_graph</c>). ORT requires the same shapes and the same device buffers on every run:
    /// a binding then binds device copies of its tensors once and copies host to device and back around
    /// each run (<see cref="OnnxRunBinding"/>). One graph per binding, i.e. per batch size.</summary>
    /// <value>The default value is false.</value>
    public bool EnableCudaGraph { get; set; }

    /// <summary>Removed: ONNX Runtime now comes from the NuGet package the build referenced (CPU, or CUDA
    /// with <c>-p:WorkersGpu=true</c>). Setting it is an error that says so, rather than silently ignored.</summary>
    /// <value>The default value is null.</value>
    public string? LibraryPath { get; set; }

    /// <summary>Threads ORT may use inside one operator; 0 lets ORT pick (one per physical core).
    /// Workers scale by batching and by processes, so one thread per session is the default.</summary>
    /// <value>The default value is 1.</value>
    public int IntraOpThreads { get; set; } = 1;

    /// <summary>Threads for running independent operators at once (Parallel mode only); 0 lets ORT pick.</summary>
    /// <value>The default value is 1.</value>
    public int InterOpThreads { get; set; } = 1;

    /// <summary>Graph optimizations applied when the session loads.</summary>
    /// <value>The default value is <see cref="OnnxGraphOptimizationLevel.All"/>.</value>
    public OnnxGraphOptimizationLevel GraphOptimizationLevel { get; set; } = OnnxGraphOptimizationLevel.All;

    /// <summary>Sequential or parallel operator execution.</summary>
    /// <value>The default value is <see cref="OnnxExecutionMode.Sequential"/>.</value>
    public OnnxExecutionMode ExecutionMode { get; set; } = OnnxExecutionMode.Sequential;

    /// <summary>Every problem at once, or an empty list.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (!Enum.IsDefined(ExecutionProvider)) problems.Add($"ExecutionProvider must be auto, cuda or cpu (is {(int)ExecutionProvider}).");
        if (DeviceId < 0) problems.Add($"DeviceId must be >= 0 (is {DeviceId}).");
        if (!Enum.IsDefined(CudnnConvAlgoSearch)) problems.Add($"CudnnConvAlgoSearch must be Exhaustive, Heuristic or Default (is {(int)CudnnConvAlgoSearch}).");
        if (GpuMemLimit is <= 0) problems.Add($"GpuMemLimit must be a positive number of bytes, or unset (is {GpuMemLimit}).");
        if (EnableCudaGraph && ExecutionProvider == OnnxExecutionProvider.Cpu) problems.Add("EnableCudaGraph needs ExecutionProvider auto or cuda (is cpu).");
        if (!Enum.IsDefined(ArenaExtendStrategy)) problems.Add($"ArenaExtendStrategy must be NextPowerOfTwo or SameAsRequested (is {(int)ArenaExtendStrategy}).");
        if (LibraryPath is not null)
            problems.Add($"LibraryPath is no longer used (is {LibraryPath}): ONNX Runtime comes with the build, CPU by default and CUDA from " +
                "`dotnet publish src/Workers.Cli -c Release -r linux-x64 -p:WorkersGpu=true` (or the ops/gpu container). Remove Inference:LibraryPath.");
        if (IntraOpThreads < 0) problems.Add($"IntraOpThreads must be >= 0 (is {IntraOpThreads}).");
        if (InterOpThreads < 0) problems.Add($"InterOpThreads must be >= 0 (is {InterOpThreads}).");
        if (!Enum.IsDefined(GraphOptimizationLevel)) problems.Add($"GraphOptimizationLevel is not a known level (is {(int)GraphOptimizationLevel}).");
        if (!Enum.IsDefined(ExecutionMode)) problems.Add($"ExecutionMode must be Sequential or Parallel (is {(int)ExecutionMode}).");
        return problems;
    }

    /// <summary>Throws <see cref="ArgumentException"/> listing every problem, if there is any.</summary>
    public void ThrowIfInvalid()
    {
        var problems = Validate();
        if (problems.Count > 0)
            throw new ArgumentException("Invalid ONNX session options:" + Environment.NewLine + string.Join(Environment.NewLine, problems.Select(p => "  - " + p)));
    }

    /// <summary>A copy, so a session keeps what it was created with.</summary>
    public OnnxSessionOptions Clone() => (OnnxSessionOptions)MemberwiseClone();
}
