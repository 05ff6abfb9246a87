using System.Globalization;
using Microsoft.Extensions.Logging;
using Workers.Onnx.Native;

namespace Workers.Onnx;

/// <summary>One loaded model (OrtSession). Input and output names are encoded to UTF-8 once, here;
/// runs go through an <see cref="OnnxRunBinding"/> over preallocated tensors. Run is thread-safe in
/// ORT, so several bindings on several threads may share one session.</summary>
public sealed unsafe class OnnxSession : IDisposable
{
    /// <summary>ORT's name for the CUDA provider.</summary>
    public const string CudaProvider = "CUDAExecutionProvider";

    /// <summary>ORT's name for the CPU provider.</summary>
    public const string CpuProvider = "CPUExecutionProvider";

    // Lets ORT keep which provider got which node, read back by Session_GetEpGraphAssignmentInfo.
    private const string RecordAssignmentKey = "session.record_ep_graph_assignment_info";

    private readonly OrtSessionHandle handle;
    private readonly NativeUtf8Array inputNames;
    private readonly NativeUtf8Array outputNames;

    private OnnxSession(
        OrtSessionHandle handle, string modelPath, OnnxSessionOptions options, OrtEnvironment environment, bool cudaEnabled, string? fallbackReason)
    {
        this.handle = handle;
        ModelPath = modelPath;
        Options = options;
        Environment = environment;
        FallbackReason = fallbackReason;
        Inputs = ReadNodes(handle.Ptr, input: true);
        Outputs = ReadNodes(handle.Ptr, input: false);
        inputNames = new NativeUtf8Array(Inputs.Select(i => i.Name).ToArray());
        outputNames = new NativeUtf8Array(Outputs.Select(o => o.Name).ToArray());
        Metadata = ReadMetadata(handle.Ptr);
        NodesPerProvider = ReadAssignment(handle.Ptr);
        // What ORT actually assigned wins over what we asked for: CUDA can be enabled and still be
        // given no node. Without assignment info, the provider we enabled is the best answer.
        ExecutionProvider = NodesPerProvider.ContainsKey(CudaProvider) ? CudaProvider
            : NodesPerProvider.Count > 0 ? NodesPerProvider.MaxBy(kv => kv.Value).Key
            : cudaEnabled ? CudaProvider : CpuProvider;
    }

    public string ModelPath { get; }

    /// <summary>The options the session was created with (a copy).</summary>
    public OnnxSessionOptions Options { get; }

    public OrtEnvironment Environment { get; }

    public IReadOnlyList<OnnxNodeInfo> Inputs { get; }

    public IReadOnlyList<OnnxNodeInfo> Outputs { get; }

    public OnnxModelMetadata Metadata { get; }

    /// <summary>The provider the model's work actually runs on: <see cref="CudaProvider"/> when any
    /// node went to CUDA, else <see cref="CpuProvider"/>. Record it with the results.</summary>
    public string ExecutionProvider { get; }

    /// <summary>How many graph nodes each provider got, as ORT assigned them.</summary>
    public IReadOnlyDictionary<string, int> NodesPerProvider { get; }

    /// <summary>Why CUDA was not used when <see cref="OnnxExecutionProvider.Auto"/> fell back to CPU
    /// (ORT's status text and log lines); null when there was no fallback.</summary>
    public string? FallbackReason { get; }

    internal OrtSession* Ptr => handle.Ptr;

    internal OrtSessionHandle Handle => handle;

    internal NativeUtf8Array InputNames => inputNames;

    internal NativeUtf8Array OutputNames => outputNames;

    /// <summary>Loads <paramref name="modelPath"/>. With <see cref="OnnxExecutionProvider.Auto"/> a CUDA
    /// failure (enabling the provider, or initialising it when the session is created) falls back to
    /// CPU, logs a warning through <paramref name="logger"/> and sets <see cref="FallbackReason"/>; with
    /// <see cref="OnnxExecutionProvider.Cuda"/> it throws <see cref="ExecutionProviderUnavailableException"/>.
    /// A broken model throws <see cref="OnnxRuntimeException"/> with ORT's message.</summary>
    public static OnnxSession Create(OrtEnvironment environment, string modelPath, OnnxSessionOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(environment);
        options = (options ?? new OnnxSessionOptions()).Clone();
        options.ThrowIfInvalid();
        if (options.LibraryPath is { } library && !string.Equals(Path.GetFullPath(library), environment.LibraryPath, StringComparison.Ordinal))
            throw new ArgumentException(
                $"Options ask for ONNX Runtime at {Path.GetFullPath(library)}, but this process loaded {environment.LibraryPath}. " +
                "Load the environment from LibraryPath (OrtEnvironment.Load) before creating sessions; one process uses one library.",
                nameof(options));
        var path = Path.GetFullPath(modelPath);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Model not found at {path}. Run `workers models fetch` to fetch the models listed in models.json.", path);

        OrtSessionHandle? session = null;
        string? fallbackReason = null;
        var cudaEnabled = false;
        if (options.ExecutionProvider != OnnxExecutionProvider.Cpu)
        {
            var mark = OrtEnvironment.Log.Mark();
            using var sessionOptions = CreateSessionOptions(options);
            var failure = TryAppendCuda(sessionOptions, options);
            if (failure is null)
            {
                try
                {
                    session = CreateOrtSession(environment, path, sessionOptions);
                    cudaEnabled = true;
                }
                catch (OnnxRuntimeException e) when (!IsModelError(e.ErrorCode))
                {
                    failure = e; // CUDA initialises when the session does: no device, driver too old, cuDNN missing ...
                }
            }
            if (failure is not null)
            {
                var reason = DescribeFailure(failure, OrtEnvironment.Log.Since(mark));
                if (options.ExecutionProvider == OnnxExecutionProvider.Cuda)
                    throw new ExecutionProviderUnavailableException(
                        CudaProvider,
                        reason,
                        $"ExecutionProvider=cuda, but ONNX Runtime {environment.Version} ({environment.LibraryPath}) could not enable CUDA: {reason}. " +
                        "Use a GPU build of ONNX Runtime (set LibraryPath; libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so " +
                        "must sit beside libonnxruntime.so.1, with the CUDA and cuDNN libraries that build needs on the loader path), " +
                        "or set ExecutionProvider to auto or cpu.",
                        failure.ErrorCode,
                        failure);
                fallbackReason = reason;
                if (logger is not null) OrtLogForwarding.FallingBackToCpu(logger, path, reason);
            }
        }
        if (session is null)
        {
            using var sessionOptions = CreateSessionOptions(options);
            session = CreateOrtSession(environment, path, sessionOptions);
        }

        try
        {
            var result = new OnnxSession(session, path, options, environment, cudaEnabled, fallbackReason);
            if (logger is not null)
                OrtLogForwarding.SessionCreated(logger, path, result.ExecutionProvider, options.ExecutionProvider.ToString().ToLowerInvariant(), environment.Version, options.IntraOpThreads);
            return result;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>A binding to run this session over preallocated tensors. Not thread-safe: one per thread.</summary>
    public OnnxRunBinding CreateBinding() => new(this);

    public int InputIndex(string name) => IndexOf(Inputs, name, "input");

    public int OutputIndex(string name) => IndexOf(Outputs, name, "output");

    /// <summary>Releases the session once no binding uses it any more.</summary>
    public void Dispose()
    {
        handle.Dispose();
        inputNames.Dispose();
        outputNames.Dispose();
    }

    public override string ToString() =>
        $"{Path.GetFileName(ModelPath)} on {ExecutionProvider}: inputs {string.Join(", ", Inputs)}; outputs {string.Join(", ", Outputs)}";

    private int IndexOf(IReadOnlyList<OnnxNodeInfo> nodes, string name, string what)
    {
        for (var i = 0; i < nodes.Count; i++)
            if (nodes[i].Name == name) return i;
        throw new ArgumentException($"{Path.GetFileName(ModelPath)} has no {what} named '{name}'; its {what}s are: {string.Join(", ", nodes.Select(n => n.Name))}.", nameof(name));
    }

    private static OrtSessionOptionsHandle CreateSessionOptions(OnnxSessionOptions options)
    {
        var so = OrtSessionOptionsHandle.Create();
        try
        {
            var api = OrtLibrary.Api;
            NativeApiStatus.Check(api->SetIntraOpNumThreads(so.Ptr, options.IntraOpThreads), "Setting intra-op threads");
            NativeApiStatus.Check(api->SetInterOpNumThreads(so.Ptr, options.InterOpThreads), "Setting inter-op threads");
            NativeApiStatus.Check(api->SetSessionGraphOptimizationLevel(so.Ptr, options.GraphOptimizationLevel), "Setting the graph optimization level");
            NativeApiStatus.Check(api->SetSessionExecutionMode(so.Ptr, options.ExecutionMode), "Setting the execution mode");
            fixed (byte* key = Utf8.Z(RecordAssignmentKey))
            fixed (byte* value = Utf8.Z("1"))
            {
                NativeApiStatus.Check(api->AddSessionConfigEntry(so.Ptr, key, value), "Asking ORT to record provider assignment");
            }
            return so;
        }
        catch
        {
            so.Dispose();
            throw;
        }
    }

    /// <summary>Create, update, append, release: the CUDA provider through its V2 options object.
    /// Returns the failure instead of throwing, so auto can fall back.</summary>
    private static OnnxRuntimeException? TryAppendCuda(OrtSessionOptionsHandle sessionOptions, OnnxSessionOptions options)
    {
        var api = OrtLibrary.Api;
        OrtCUDAProviderOptionsV2* raw = null;
        var failure = NativeApiStatus.ToException(api->CreateCUDAProviderOptions(&raw), "Creating CUDA provider options");
        if (failure is not null) return failure;
        using var cuda = OrtCudaProviderOptionsHandle.Own(raw);

        // Only what differs from the provider's own defaults (device 0, EXHAUSTIVE, no memory cap,
        // no CUDA graph) is passed; with nothing to change, Update is not called at all.
        var keys = new List<string>();
        var values = new List<string>();
        if (options.DeviceId != 0)
        {
            keys.Add("device_id");
            values.Add(options.DeviceId.ToString(CultureInfo.InvariantCulture));
        }
        if (options.CudnnConvAlgoSearch != CudnnConvAlgoSearch.Exhaustive)
        {
            keys.Add("cudnn_conv_algo_search");
            values.Add(options.CudnnConvAlgoSearch == CudnnConvAlgoSearch.Heuristic ? "HEURISTIC" : "DEFAULT");
        }
        if (options.GpuMemLimit is { } limit)
        {
            keys.Add("gpu_mem_limit");
            values.Add(limit.ToString(CultureInfo.InvariantCulture));
        }
        if (options.EnableCudaGraph)
        {
            keys.Add("enable_cuda_graph");
            values.Add("1");
        }
        if (keys.Count > 0)
        {
            using var k = new NativeUtf8Array(keys);
            using var v = new NativeUtf8Array(values);
            failure = NativeApiStatus.ToException(api->UpdateCUDAProviderOptions(cuda.Ptr, k.Pointers, v.Pointers, (nuint)keys.Count), "Configuring the CUDA provider");
        }
        if (failure is not null) return failure;
        return NativeApiStatus.ToException(
            api->SessionOptionsAppendExecutionProvider_CUDA_V2(sessionOptions.Ptr, cuda.Ptr), "Enabling the CUDA execution provider");
    }

    private static OrtSessionHandle CreateOrtSession(OrtEnvironment environment, string path, OrtSessionOptionsHandle options)
    {
        OrtSession* session;
        fixed (byte* p = Utf8.Z(path))
        {
            var status = OrtLibrary.Api->CreateSession(environment.Ptr, p, options.Ptr, &session);
            if (status != null) throw NativeApiStatus.ToException(status, $"Loading model {path}")!;
        }
        return OrtSessionHandle.Own(session);
    }

    // Errors about the model itself: no provider would do better, so they are not a reason to fall back.
    private static bool IsModelError(OrtErrorCode code) =>
        code is OrtErrorCode.NoSuchFile or OrtErrorCode.NoModel or OrtErrorCode.InvalidProtobuf or OrtErrorCode.InvalidGraph or OrtErrorCode.ModelLoaded;

    /// <summary>ORT's status text plus what it logged meanwhile at warning and up: the status alone
    /// often says only "Failed to load shared library"; the log line says which and why.</summary>
    private static string DescribeFailure(OnnxRuntimeException failure, IReadOnlyList<OrtLogEntry> logged)
    {
        var lines = logged.Where(l => l.Severity >= OrtLogSeverity.Warning && !failure.OrtMessage.Contains(l.Message, StringComparison.Ordinal))
            .Select(l => l.Message.Trim())
            .Distinct()
            .ToList();
        return lines.Count == 0 ? failure.OrtMessage : $"{failure.OrtMessage} (ORT log: {string.Join(" | ", lines)})";
    }

    private static OnnxNodeInfo[] ReadNodes(OrtSession* session, bool input)
    {
        var api = OrtLibrary.Api;
        nuint count;
        NativeApiStatus.Check(input ? api->SessionGetInputCount(session, &count) : api->SessionGetOutputCount(session, &count), "Counting model inputs/outputs");
        OrtAllocator* allocator;
        NativeApiStatus.Check(api->GetAllocatorWithDefaultOptions(&allocator), "Getting ORT's default allocator");

        var nodes = new OnnxNodeInfo[(int)count];
        for (nuint i = 0; i < count; i++)
        {
            byte* rawName;
            NativeApiStatus.Check(
                input ? api->SessionGetInputName(session, i, allocator, &rawName) : api->SessionGetOutputName(session, i, allocator, &rawName),
                "Reading a model input/output name");
            var name = TakeString(allocator, rawName);

            OrtTypeInfo* rawType;
            NativeApiStatus.Check(
                input ? api->SessionGetInputTypeInfo(session, i, &rawType) : api->SessionGetOutputTypeInfo(session, i, &rawType),
                "Reading a model input/output type");
            using var typeInfo = OrtTypeInfoHandle.Own(rawType);
            OnnxValueKind kind;
            NativeApiStatus.Check(api->GetOnnxTypeFromTypeInfo(typeInfo.Ptr, &kind), "Reading a value kind");
            if (kind != OnnxValueKind.Tensor)
            {
                nodes[(int)i] = new OnnxNodeInfo(name, kind, TensorElementType.Undefined, [], []);
                continue;
            }

            OrtTensorTypeAndShapeInfo* tensorInfo; // borrowed from typeInfo, not released separately
            NativeApiStatus.Check(api->CastTypeInfoToTensorInfo(typeInfo.Ptr, &tensorInfo), "Reading tensor info");
            TensorElementType elementType;
            NativeApiStatus.Check(api->GetTensorElementType(tensorInfo, &elementType), "Reading an element type");
            nuint rank;
            NativeApiStatus.Check(api->GetDimensionsCount(tensorInfo, &rank), "Reading a rank");
            var dims = new long[(int)rank];
            var symbolic = new string[(int)rank];
            if (rank > 0)
            {
                var names = new nint[(int)rank];
                fixed (long* d = dims)
                fixed (nint* n = names)
                {
                    NativeApiStatus.Check(api->GetDimensions(tensorInfo, d, rank), "Reading dimensions");
                    NativeApiStatus.Check(api->GetSymbolicDimensions(tensorInfo, (byte**)n, rank), "Reading symbolic dimensions");
                }
                for (var r = 0; r < (int)rank; r++) symbolic[r] = names[r] == 0 ? "" : Utf8.Read((byte*)names[r]);
            }
            nodes[(int)i] = new OnnxNodeInfo(name, kind, elementType, dims, symbolic);
        }
        return nodes;
    }

    private static OnnxModelMetadata ReadMetadata(OrtSession* session)
    {
        var api = OrtLibrary.Api;
        OrtModelMetadata* raw;
        NativeApiStatus.Check(api->SessionGetModelMetadata(session, &raw), "Reading model metadata");
        using var metadata = OrtModelMetadataHandle.Own(raw);
        OrtAllocator* allocator;
        NativeApiStatus.Check(api->GetAllocatorWithDefaultOptions(&allocator), "Getting ORT's default allocator");

        byte* producer;
        NativeApiStatus.Check(api->ModelMetadataGetProducerName(metadata.Ptr, allocator, &producer), "Reading the producer name");
        var producerName = TakeString(allocator, producer);
        byte* graph;
        NativeApiStatus.Check(api->ModelMetadataGetGraphName(metadata.Ptr, allocator, &graph), "Reading the graph name");
        var graphName = TakeString(allocator, graph);
        long version;
        NativeApiStatus.Check(api->ModelMetadataGetVersion(metadata.Ptr, &version), "Reading the model version");
        return new OnnxModelMetadata(producerName, graphName, version);
    }

    // A string ORT allocated for us: copied, then handed back to the allocator it came from.
    private static string TakeString(OrtAllocator* allocator, byte* s)
    {
        try
        {
            return Utf8.Read(s);
        }
        finally
        {
            NativeApiStatus.Check(OrtLibrary.Api->AllocatorFree(allocator, s), "Freeing a string ORT returned");
        }
    }

    /// <summary>Nodes per provider from Session_GetEpGraphAssignmentInfo (API 24+). The arrays it
    /// returns belong to the session and are not freed here. Diagnostic only: empty when ORT cannot say.</summary>
    private static Dictionary<string, int> ReadAssignment(OrtSession* session)
    {
        var api = OrtLibrary.Api;
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        OrtEpAssignedSubgraph** subgraphs;
        nuint count;
        if (NativeApiStatus.ToException(api->Session_GetEpGraphAssignmentInfo(session, &subgraphs, &count)) is not null) return result;
        for (nuint i = 0; i < count; i++)
        {
            byte* name;
            NativeApiStatus.Check(api->EpAssignedSubgraph_GetEpName(subgraphs[i], &name), "Reading a provider name");
            OrtEpAssignedNode** nodes;
            nuint nodeCount;
            NativeApiStatus.Check(api->EpAssignedSubgraph_GetNodes(subgraphs[i], &nodes, &nodeCount), "Reading assigned nodes");
            var ep = Utf8.Read(name);
            result[ep] = result.GetValueOrDefault(ep) + (int)nodeCount;
        }
        return result;
    }
}
