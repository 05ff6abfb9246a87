using System.Globalization;
using Microsoft.Extensions.Logging;
using Ort = Microsoft.ML.OnnxRuntime;

namespace Workers.Onnx;

/// <summary>One loaded model: an <see cref="Ort.InferenceSession"/> from the official managed API,
/// plus what Workers adds on top: the provider choice (auto falls back loudly, cuda is strict about
/// where the compute nodes landed), the model's inputs and outputs with their element types, and
/// runs through an <see cref="OnnxRunBinding"/> over preallocated tensors. Run is thread-safe in ORT,
/// so several bindings on several threads may share one session.</summary>
public sealed class OnnxSession : IDisposable
{
    /// <summary>ORT's name for the CUDA provider.</summary>
    public const string CudaProvider = "CUDAExecutionProvider";

    /// <summary>ORT's name for the CPU provider.</summary>
    public const string CpuProvider = "CPUExecutionProvider";

    /// <summary>What a node needs for the CUDA provider of the 1.32.0 GPU package; said in every
    /// refusal so an operator knows what to install.</summary>
    public const string CudaRequirements =
        "the GPU build (-p:WorkersGpu=true, or the ops/gpu container), the CUDA 13 runtime libraries (libcudart.so.13, libcublas.so.13, " +
        "libcublasLt.so.13, libcurand.so.10), cuDNN 9 (libcudnn.so.9) and an R580+ NVIDIA driver (libcuda.so.1)";

    private static long sessionCounter;

    private readonly Ort.InferenceSession session;
    private readonly Ort.RunOptions runOptions;

    // The session itself holds one reference, each binding one more: ORT's session goes when the last
    // lets go, so disposing the session under a live binding cannot free what the binding runs.
    private int references = 1;
    private int disposed;

    private OnnxSession(Ort.InferenceSession session, string modelPath, OnnxSessionOptions options, OrtEnvironment environment,
        NodePlacement placement, bool cudaEnabled, string? fallbackReason)
    {
        this.session = session;
        ModelPath = modelPath;
        Options = options;
        Environment = environment;
        FallbackReason = fallbackReason;
        Placement = placement;
        UsesCuda = cudaEnabled && placement.NodesPerProvider.GetValueOrDefault(CudaProvider) > 0;
        // No run tag: a tag other than the session's log id makes ORT log "Running with tag" on every
        // run (measured), which would cost a callback per run.
        runOptions = new Ort.RunOptions { LogSeverityLevel = Ort.OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING };
        Inputs = ReadNodes(session.InputNames, session.InputMetadata);
        Outputs = ReadNodes(session.OutputNames, session.OutputMetadata);
        var metadata = session.ModelMetadata;
        Metadata = new OnnxModelMetadata(metadata.ProducerName, metadata.GraphName, metadata.Version);
        ExecutionProvider = UsesCuda ? CudaProvider : CpuProvider;
    }

    public string ModelPath { get; }

    /// <summary>The options the session was created with (a copy).</summary>
    public OnnxSessionOptions Options { get; }

    public OrtEnvironment Environment { get; }

    public IReadOnlyList<OnnxNodeInfo> Inputs { get; }

    public IReadOnlyList<OnnxNodeInfo> Outputs { get; }

    public OnnxModelMetadata Metadata { get; }

    /// <summary>The provider the model's work actually runs on: <see cref="CudaProvider"/> when ORT
    /// placed nodes on CUDA, else <see cref="CpuProvider"/>. Record it with the results.</summary>
    public string ExecutionProvider { get; }

    /// <summary>How many graph nodes each provider got, as ORT reported it.</summary>
    public IReadOnlyDictionary<string, int> NodesPerProvider => Placement.NodesPerProvider;

    /// <summary>ORT's node placement report for this session.</summary>
    public NodePlacement Placement { get; }

    /// <summary>Why CUDA was not used when <see cref="OnnxExecutionProvider.Auto"/> fell back to CPU
    /// (ORT's status text and log lines); null when there was no fallback.</summary>
    public string? FallbackReason { get; }

    /// <summary>True when nodes run on the CUDA provider: bindings then keep device copies of their tensors.</summary>
    internal bool UsesCuda { get; }

    internal Ort.InferenceSession Inner => session;

    internal Ort.RunOptions RunOptions => runOptions;

    /// <summary>Loads <paramref name="modelPath"/>. With <see cref="OnnxExecutionProvider.Auto"/> a CUDA
    /// failure (a CPU-only build, a provider library or CUDA/cuDNN library missing, no device) falls back
    /// to CPU, logs a warning through <paramref name="logger"/> and sets <see cref="FallbackReason"/>; with
    /// <see cref="OnnxExecutionProvider.Cuda"/> it throws <see cref="ExecutionProviderUnavailableException"/>,
    /// also when CUDA loaded but the model's compute nodes were placed on CPU. A broken model throws
    /// <see cref="OnnxRuntimeException"/> with ORT's message.</summary>
    public static OnnxSession Create(OrtEnvironment environment, string modelPath, OnnxSessionOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(environment);
        options = (options ?? new OnnxSessionOptions()).Clone();
        options.ThrowIfInvalid();
        var path = Path.GetFullPath(modelPath);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Model not found at {path}. Run `workers models fetch` to fetch the models listed in models.json.", path);

        if (options.ExecutionProvider != OnnxExecutionProvider.Cpu)
        {
            var mark = OrtEnvironment.Log.Mark();
            string reason;
            OrtErrorCode code;
            Exception? inner;
            try
            {
                var (cudaSession, placement) = Load(environment, path, options, cuda: true);
                var refusal = options.ExecutionProvider == OnnxExecutionProvider.Cuda ? CheckPlacement(placement) : null;
                if (refusal is null)
                {
                    var result = Wrap(cudaSession, path, options, environment, placement, cudaEnabled: true, fallbackReason: null, logger);
                    if (!result.UsesCuda && logger is not null)
                        OrtLogForwarding.FallingBackToCpu(logger, path, "ORT placed no node on CUDAExecutionProvider");
                    return result;
                }
                cudaSession.Dispose();
                throw new ExecutionProviderUnavailableException(
                    CudaProvider, refusal,
                    $"ExecutionProvider=cuda, and the CUDA provider loaded, but {refusal} for {Path.GetFileName(path)}. " +
                    "The model's compute would run on CPU: check the operators are supported by the CUDA provider of ONNX Runtime " +
                    $"{environment.Version}, or set ExecutionProvider to auto to accept it.",
                    OrtErrorCode.EpFail);
            }
            catch (OnnxRuntimeException e) when (e is not ExecutionProviderUnavailableException && !IsModelError(e.ErrorCode))
            {
                (reason, code, inner) = (DescribeFailure(e.OrtMessage, OrtEnvironment.Log.Since(mark)), e.ErrorCode, e);
            }
            catch (EntryPointNotFoundException e)
            {
                (reason, code, inner) = (DescribeFailure(e.Message, OrtEnvironment.Log.Since(mark)), OrtErrorCode.Fail, e);
            }

            if (options.ExecutionProvider == OnnxExecutionProvider.Cuda)
                throw new ExecutionProviderUnavailableException(
                    CudaProvider,
                    reason,
                    $"ExecutionProvider=cuda, but ONNX Runtime {environment.Version} ({environment.LibraryPath}) could not enable CUDA: {reason}. " +
                    $"A GPU worker needs {CudaRequirements}. Run `workers doctor` on this node to see what is missing, " +
                    "or set ExecutionProvider to auto or cpu.",
                    code,
                    inner);
            if (logger is not null) OrtLogForwarding.FallingBackToCpu(logger, path, reason);
            var (cpu, cpuPlacement) = Load(environment, path, options, cuda: false);
            return Wrap(cpu, path, options, environment, cpuPlacement, cudaEnabled: false, reason, logger);
        }

        var (plain, plainPlacement) = Load(environment, path, options, cuda: false);
        return Wrap(plain, path, options, environment, plainPlacement, cudaEnabled: false, fallbackReason: null, logger);
    }

    /// <summary>A binding to run this session over preallocated tensors. Not thread-safe: one per thread.</summary>
    public OnnxRunBinding CreateBinding()
    {
        AddReference();
        try
        {
            return new OnnxRunBinding(this);
        }
        catch
        {
            Release();
            throw;
        }
    }

    public int InputIndex(string name) => IndexOf(Inputs, name, "input");

    public int OutputIndex(string name) => IndexOf(Outputs, name, "output");

    /// <summary>The element type the model declares for input <paramref name="name"/>.</summary>
    public TensorElementType InputType(string name) => Inputs[InputIndex(name)].ElementType;

    /// <summary>The element type the model declares for output <paramref name="name"/>.</summary>
    public TensorElementType OutputType(string name) => Outputs[OutputIndex(name)].ElementType;

    /// <summary>Releases the session once no binding uses it any more.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 0) Release();
    }

    internal void AddReference()
    {
        int seen;
        do
        {
            seen = Volatile.Read(ref references);
            if (seen == 0 || Volatile.Read(ref disposed) == 1) throw new ObjectDisposedException(nameof(OnnxSession), $"The session for {Path.GetFileName(ModelPath)} was disposed.");
        }
        while (Interlocked.CompareExchange(ref references, seen + 1, seen) != seen);
    }

    internal void Release()
    {
        if (Interlocked.Decrement(ref references) != 0) return;
        runOptions.Dispose();
        session.Dispose();
    }

    public override string ToString() =>
        $"{Path.GetFileName(ModelPath)} on {ExecutionProvider}: inputs {string.Join(", ", Inputs)}; outputs {string.Join(", ", Outputs)}";

    /// <summary>Why <c>cuda</c> refuses this placement, or null when the compute runs on CUDA.</summary>
    internal static string? CheckPlacement(NodePlacement placement)
    {
        if (!placement.IsKnown)
            return "ONNX Runtime wrote no node placement report, so where the nodes run cannot be confirmed";
        if (placement.NodesPerProvider.GetValueOrDefault(CudaProvider) == 0)
            return $"no node was placed on {CudaProvider} ({placement.Summary})";
        var onCpu = placement.ComputeNodesOn(CpuProvider);
        return onCpu.Count == 0 ? null
            : $"{onCpu.Count} compute node(s) were placed on {CpuProvider}: {string.Join(", ", onCpu.Take(10))}{(onCpu.Count > 10 ? ", ..." : "")}";
    }

    private static OnnxSession Wrap(Ort.InferenceSession inner, string path, OnnxSessionOptions options, OrtEnvironment environment,
        NodePlacement placement, bool cudaEnabled, string? fallbackReason, ILogger? logger)
    {
        try
        {
            var result = new OnnxSession(inner, path, options, environment, placement, cudaEnabled, fallbackReason);
            if (logger is not null)
                OrtLogForwarding.SessionCreated(logger, path, result.ExecutionProvider, options.ExecutionProvider.ToString().ToLowerInvariant(),
                    environment.Version, options.IntraOpThreads, placement.Summary);
            return result;
        }
        catch
        {
            inner.Dispose();
            throw;
        }
    }

    // One attempt at a session, with or without CUDA. With CUDA: first a probe session at Verbose under
    // a log id of its own, whose placement report is read from the lines the environment's callback hands
    // on, then the working session at Warning. The probe is released at once: a session logging at Verbose
    // keeps doing so while it runs (measured: "block in memory pattern size is ... fall back" on every
    // run at a new batch size, ~26 KB of managed strings per run), so the working session must not.
    // Both are built from the same options, so ORT partitions them the same way. Without CUDA the CPU
    // provider is the only one, so every node is on it: no probe, one session (a worker's start-up loaded
    // the model twice for a report that could say nothing else).
    private static (Ort.InferenceSession Session, NodePlacement Placement) Load(OrtEnvironment environment, string path, OnnxSessionOptions options, bool cuda)
    {
        var logId = "session-" + Interlocked.Increment(ref sessionCounter).ToString(CultureInfo.InvariantCulture);
        if (!cuda) return (Open(path, options, cuda, logId, Ort.OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING), NodePlacement.Only(CpuProvider));
        var placement = new NodePlacement();
        using (environment.Subscribe(e =>
        {
            if (e.LogId == logId && (e.Message.Contains("placed on [", StringComparison.Ordinal) || e.Message.StartsWith("  ", StringComparison.Ordinal)))
                lock (placement) placement.Add(e.Message); // node lists may come as lines of their own
        }))
        {
            using var probe = Open(path, options, cuda, logId, Ort.OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE);
        }
        return (Open(path, options, cuda, logId, Ort.OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING), placement);
    }

    private static Ort.InferenceSession Open(string path, OnnxSessionOptions options, bool cuda, string logId, Ort.OrtLoggingLevel severity)
    {
        using var so = new Ort.SessionOptions
        {
            LogId = logId,
            LogSeverityLevel = severity,
            IntraOpNumThreads = options.IntraOpThreads,
            InterOpNumThreads = options.InterOpThreads,
            GraphOptimizationLevel = (Ort.GraphOptimizationLevel)options.GraphOptimizationLevel,
            ExecutionMode = (Ort.ExecutionMode)options.ExecutionMode,
        };
        try
        {
            if (cuda) AppendCuda(so, options);
            return new Ort.InferenceSession(path, so);
        }
        catch (Ort.OnnxRuntimeException e)
        {
            throw OrtErrors.Translate(e, $"Loading model {path}");
        }
    }

    /// <summary>The CUDA provider through its V2 options object, with the options that matter for throughput.</summary>
    private static void AppendCuda(Ort.SessionOptions so, OnnxSessionOptions options)
    {
        using var cuda = new Ort.OrtCUDAProviderOptions();
        cuda.UpdateOptions(CudaProviderOptions(options));
        so.AppendExecutionProvider_CUDA(cuda);
    }

    /// <summary>The CUDA provider's option keys and values for <paramref name="options"/>.</summary>
    internal static Dictionary<string, string> CudaProviderOptions(OnnxSessionOptions options)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["device_id"] = options.DeviceId.ToString(CultureInfo.InvariantCulture),
            ["cudnn_conv_algo_search"] = options.CudnnConvAlgoSearch switch
            {
                CudnnConvAlgoSearch.Heuristic => "HEURISTIC",
                CudnnConvAlgoSearch.Default => "DEFAULT",
                _ => "EXHAUSTIVE",
            },
            ["arena_extend_strategy"] = options.ArenaExtendStrategy == ArenaExtendStrategy.SameAsRequested ? "kSameAsRequested" : "kNextPowerOfTwo",
            ["enable_cuda_graph"] = options.EnableCudaGraph ? "1" : "0",
        };
        if (options.GpuMemLimit is { } limit) result["gpu_mem_limit"] = limit.ToString(CultureInfo.InvariantCulture);
        return result;
    }

    // Errors about the model itself: no provider would do better, so they are not a reason to fall back.
    private static bool IsModelError(OrtErrorCode code) =>
        code is OrtErrorCode.NoSuchFile or OrtErrorCode.NoModel or OrtErrorCode.InvalidProtobuf or OrtErrorCode.InvalidGraph or OrtErrorCode.ModelLoaded;

    /// <summary>ORT's status text plus what it logged meanwhile at warning and up: the status alone
    /// often says only "Failed to load shared library"; the log line says which and why.</summary>
    private static string DescribeFailure(string message, IReadOnlyList<OrtLogEntry> logged)
    {
        var lines = logged.Where(l => l.Severity >= OrtLogSeverity.Warning && !message.Contains(l.Message, StringComparison.Ordinal))
            .Select(l => l.Message.Trim())
            .Distinct()
            .ToList();
        message = message.Trim();
        return lines.Count == 0 ? message : $"{message} (ORT log: {string.Join(" | ", lines)})";
    }

    private int IndexOf(IReadOnlyList<OnnxNodeInfo> nodes, string name, string what)
    {
        for (var i = 0; i < nodes.Count; i++)
            if (nodes[i].Name == name) return i;
        throw new ArgumentException($"{Path.GetFileName(ModelPath)} has no {what} named '{name}'; its {what}s are: {string.Join(", ", nodes.Select(n => n.Name))}.", nameof(name));
    }

    private static OnnxNodeInfo[] ReadNodes(IReadOnlyList<string> names, IReadOnlyDictionary<string, Ort.NodeMetadata> metadata) =>
        [.. names.Select(name =>
        {
            var m = metadata[name];
            if (m.OnnxValueType != Ort.OnnxValueType.ONNX_TYPE_TENSOR)
                return new OnnxNodeInfo(name, (OnnxValueKind)m.OnnxValueType, TensorElementType.Undefined, [], []);
            var dims = m.Dimensions.Select(d => (long)d).ToArray();
            var symbolic = m.SymbolicDimensions.Select(s => s ?? "").ToArray();
            return new OnnxNodeInfo(name, OnnxValueKind.Tensor, (TensorElementType)m.ElementDataType, dims, symbolic);
        })];
}
