using Microsoft.Extensions.Logging;

namespace Workers.Onnx.Tests.Sessions;

[Collection(OnnxCollection.Name)]
public sealed class OnnxSessionTests(OnnxFixture fixture)
{
    private static readonly OnnxSessionOptions Cpu = new() { ExecutionProvider = OnnxExecutionProvider.Cpu };

    [Theory]
    [InlineData(ModelCatalog.SileroVadV5)]
    [InlineData(ModelCatalog.SileroVadV6)]
    public void SileroInputsAndOutputs_AreExactlyWhatModelsJsonRecords(string name)
    {
        var entry = fixture.Catalog.Get(name);
        using var session = OnnxSession.Create(fixture.Environment, fixture.Catalog.Resolve(name, fixture.ModelsRoot), Cpu);

        static (string, string, string) Key(string n, string t, IEnumerable<long> s) => (n, t, string.Join(",", s));
        Assert.Equal(entry.Inputs!.Select(i => Key(i.Name, i.Type, i.Shape)), session.Inputs.Select(i => Key(i.Name, TensorElementTypes.Name(i.ElementType), i.Shape)));
        Assert.Equal(entry.Outputs!.Select(o => Key(o.Name, o.Type, o.Shape)), session.Outputs.Select(o => Key(o.Name, TensorElementTypes.Name(o.ElementType), o.Shape)));
        Assert.Equal("input: float32[?, ?]", session.Inputs[0].ToString());
        Assert.Equal("sr: int64[]", session.Inputs[2].ToString());
    }

    [Fact]
    public void Cpu_RunsEveryNodeOnTheCpuProvider_AndSaysSo()
    {
        using var session = OnnxSession.Create(fixture.Environment, fixture.SileroV5, Cpu);

        Assert.Equal(OnnxSession.CpuProvider, session.ExecutionProvider);
        // The CPU provider is the only one the session was given: every node is on it, known without a probe session.
        Assert.Equal(OnnxSession.CpuProvider, session.Placement.AllOn);
        Assert.Equal($"all on {OnnxSession.CpuProvider}", session.Placement.Summary);
        Assert.Null(session.FallbackReason);
    }

    [Fact]
    public void Auto_OnTheCpuBuild_FallsBackToCpu_WarningLoudlyWithOrtsOwnReason()
    {
        // The default build references the CPU package, which has no CUDA provider at all; ORT says so.
        // (The GPU build's fallback, naming the missing CUDA library, is GpuBuildTests.)
        var logger = new ListLogger();

        using var session = OnnxSession.Create(fixture.Environment, fixture.SileroV5, new OnnxSessionOptions(), logger);

        Assert.Equal(OnnxSession.CpuProvider, session.ExecutionProvider);
        Assert.Contains("CUDA execution provider is not enabled in this build", session.FallbackReason);
        var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains("falling back to CPU", warning.Message);
        Assert.Contains("CUDA execution provider is not enabled in this build", warning.Message);
        Assert.Equal(OnnxSession.CpuProvider, session.Placement.AllOn);
    }

    [Theory]
    [InlineData(CudnnConvAlgoSearch.Heuristic)]
    [InlineData(CudnnConvAlgoSearch.Exhaustive)]
    public void Cuda_WithoutCuda_RefusesToStart_WithOrtsReasonAndWhatToDo(CudnnConvAlgoSearch search)
    {
        var options = new OnnxSessionOptions { ExecutionProvider = OnnxExecutionProvider.Cuda, CudnnConvAlgoSearch = search };

        var e = Assert.Throws<ExecutionProviderUnavailableException>(() => OnnxSession.Create(fixture.Environment, fixture.SileroV5, options));

        Assert.Equal(OnnxSession.CudaProvider, e.Provider);
        Assert.Contains("ExecutionProvider=cuda", e.Message);
        Assert.Contains("CUDA execution provider is not enabled in this build", e.Reason);
        Assert.Contains("CUDA 13", e.Message);
        Assert.Contains("cuDNN 9", e.Message);
        Assert.Contains("workers doctor", e.Message);
        Assert.Contains("-p:WorkersGpu=true", e.Message);
        Assert.Equal(OrtErrorCode.Fail, e.ErrorCode);
    }

    [Theory]
    [InlineData(OnnxExecutionProvider.Cpu)]
    [InlineData(OnnxExecutionProvider.Auto)]
    public void CorruptModel_ThrowsOnnxRuntimeException_CarryingOrtsMessage(OnnxExecutionProvider provider)
    {
        using var dir = new TempDirectory();
        var path = dir.File("corrupt.onnx");
        var bytes = File.ReadAllBytes(fixture.SileroV5);
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 3).ToArray()); // a download cut short

        var e = Assert.Throws<OnnxRuntimeException>(() => OnnxSession.Create(fixture.Environment, path, new OnnxSessionOptions { ExecutionProvider = provider }));

        Assert.IsNotType<ExecutionProviderUnavailableException>(e);
        Assert.Equal(OrtErrorCode.InvalidProtobuf, e.ErrorCode);
        Assert.Contains("Protobuf parsing failed", e.OrtMessage);
        Assert.Contains(path, e.Message);
        Assert.Contains(e.OrtMessage, e.Message);
    }

    [Fact]
    public void LibraryPath_IsRefused_SayingWhereOnnxRuntimeComesFromNow()
    {
        // Issue 16: the native library comes from the NuGet package; a leftover setting must not be ignored silently.
        var options = new OnnxSessionOptions { ExecutionProvider = OnnxExecutionProvider.Cpu, LibraryPath = "/opt/onnxruntime-gpu/lib/libonnxruntime.so.1" };

        var e = Assert.Throws<ArgumentException>(() => OnnxSession.Create(fixture.Environment, fixture.SileroV5, options));

        Assert.Contains("LibraryPath is no longer used", e.Message);
        Assert.Contains("-p:WorkersGpu=true", e.Message);
        Assert.Same(fixture.Environment, OrtEnvironment.Load());
    }

    [Fact]
    public void Environment_IsTheCpuPackage_1_32_0_LoadedFromTheBuildOutput()
    {
        var env = fixture.Environment;

        Assert.Equal("1.32.0", env.Version);
        Assert.Equal([OnnxSession.CpuProvider], env.AvailableProviders);
        Assert.False(env.HasCudaProvider);
        Assert.EndsWith("libonnxruntime.so", env.LibraryPath);
        Assert.True(File.Exists(env.LibraryPath), env.LibraryPath);
        Assert.DoesNotContain("/models/", env.LibraryPath); // not the npm library models fetch used to bring
    }

    [Fact]
    public void CudaProviderOptions_CarryEveryThroughputSetting()
    {
        var options = new OnnxSessionOptions
        {
            DeviceId = 1, CudnnConvAlgoSearch = CudnnConvAlgoSearch.Default, GpuMemLimit = 2L << 30,
            ArenaExtendStrategy = ArenaExtendStrategy.SameAsRequested, EnableCudaGraph = true,
        };

        var cuda = OnnxSession.CudaProviderOptions(options);

        Assert.Equal("1", cuda["device_id"]);
        Assert.Equal("DEFAULT", cuda["cudnn_conv_algo_search"]);
        Assert.Equal("2147483648", cuda["gpu_mem_limit"]);
        Assert.Equal("kSameAsRequested", cuda["arena_extend_strategy"]);
        Assert.Equal("1", cuda["enable_cuda_graph"]);
        var defaults = OnnxSession.CudaProviderOptions(new OnnxSessionOptions());
        Assert.Equal("HEURISTIC", defaults["cudnn_conv_algo_search"]);
        Assert.Equal("0", defaults["enable_cuda_graph"]);
        Assert.False(defaults.ContainsKey("gpu_mem_limit")); // ORT's own default: no cap
    }

    [Fact]
    public void MissingModel_NamesWorkersModelsFetch()
    {
        var e = Assert.Throws<FileNotFoundException>(() => OnnxSession.Create(fixture.Environment, "/nonexistent/silero_vad_v5.onnx", Cpu));
        Assert.Contains("workers models fetch", e.Message);
    }

    [Fact]
    public void InvalidOptions_AreAllReportedTogether()
    {
        var options = new OnnxSessionOptions { ExecutionProvider = OnnxExecutionProvider.Cpu, DeviceId = -1, IntraOpThreads = -2, GpuMemLimit = 0, EnableCudaGraph = true };

        var e = Assert.Throws<ArgumentException>(() => OnnxSession.Create(fixture.Environment, fixture.SileroV5, options));

        Assert.Contains("DeviceId", e.Message);
        Assert.Contains("IntraOpThreads", e.Message);
        Assert.Contains("GpuMemLimit", e.Message);
        Assert.Contains("EnableCudaGraph", e.Message);
        Assert.Empty(new OnnxSessionOptions().Validate());
    }

    [Fact]
    public void Binding_RejectsTensorsThatDoNotFit_AndSaysWhatIsUnbound()
    {
        using var session = OnnxSession.Create(fixture.Environment, fixture.SileroV5, Cpu);
        using var binding = session.CreateBinding();
        using var wrongType = OrtTensor<long>.Allocate(1, 576);
        using var wrongShape = OrtTensor<float>.Allocate(3, 1, 128);
        using var input = OrtTensor<float>.Allocate(1, 576);

        Assert.Contains("is float32, the tensor is int64", Assert.Throws<ArgumentException>(() => binding.BindInput("input", wrongType)).Message);
        Assert.Contains("has shape [2, ?, 128]", Assert.Throws<ArgumentException>(() => binding.BindInput("state", wrongShape)).Message);
        Assert.Contains("its inputs are: input, state, sr", Assert.Throws<ArgumentException>(() => binding.BindInput("audio", input)).Message);

        binding.BindInput("input", input);
        var e = Assert.Throws<InvalidOperationException>(binding.Run);
        Assert.Contains("unbound: state, sr", e.Message);
    }

    [Fact]
    public void RunErrors_CarryOrtsMessage()
    {
        using var session = OnnxSession.Create(fixture.Environment, fixture.SileroV5, Cpu);
        using var binding = session.CreateBinding();
        using var input = OrtTensor<float>.Allocate(2, 576);
        using var state = OrtTensor<float>.Allocate(2, 3, 128); // batch 3 against an input of batch 2
        using var sr = OrtTensor<long>.Allocate();
        using var output = OrtTensor<float>.Allocate(2, 1);
        sr.Span[0] = 16000;
        binding.BindInput("input", input);
        binding.BindInput("state", state);
        binding.BindInput("sr", sr);
        binding.BindOutput("output", output);

        var e = Assert.Throws<OnnxRuntimeException>(binding.Run);

        Assert.StartsWith("Running silero_vad_v5.onnx: ONNX Runtime error", e.Message);
        Assert.False(string.IsNullOrWhiteSpace(e.OrtMessage));
    }

    [Fact]
    public void DisposingATensorOrTheSessionWhileBound_DoesNotFreeWhatOrtStillUses()
    {
        var session = OnnxSession.Create(fixture.Environment, fixture.SileroV5, Cpu);
        var binding = session.CreateBinding();
        var input = OrtTensor<float>.Allocate(2, 576);
        var state = OrtTensor<float>.Allocate(2, 2, 128);
        var sr = OrtTensor<long>.Allocate();
        var output = OrtTensor<float>.Allocate(2, 1);
        sr.Span[0] = 16000;
        binding.BindInput("input", input);
        binding.BindInput("state", state);
        binding.BindInput("sr", sr);
        binding.BindOutput("output", output);

        input.Dispose();
        state.Dispose();
        session.Dispose(); // the binding still holds the session and the tensors

        binding.Run();
        Assert.InRange(output.Span[0], 0f, 1f);
        Assert.Throws<ObjectDisposedException>(() => input.Span.Length);
        Assert.Throws<ObjectDisposedException>(() => session.CreateBinding());
        binding.Dispose();
        sr.Dispose();
        output.Dispose();
    }

    [Fact]
    public void ForwardedOrtLog_ReachesTheILogger()
    {
        var logger = new ListLogger();
        using (fixture.Environment.ForwardTo(logger))
        {
            fixture.Environment.SetLogSeverity(OrtLogSeverity.Info);
            try
            {
                using var session = OnnxSession.Create(fixture.Environment, fixture.SileroV5, Cpu);
            }
            finally
            {
                fixture.Environment.SetLogSeverity(OrtLogSeverity.Warning);
            }
        }

        // ORT's info lines of the session's creation (its arena, for one; "Initializing session" came from the verbose
        // placement probe, which a CPU session no longer runs).
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Debug && e.Message.StartsWith("onnxruntime [") && e.Message.Contains("bfc_arena"));
        var count = logger.Entries.Count;
        using (var session = OnnxSession.Create(fixture.Environment, fixture.SileroV5, new OnnxSessionOptions { CudnnConvAlgoSearch = CudnnConvAlgoSearch.Exhaustive }))
        {
        }
        Assert.Equal(count, logger.Entries.Count); // unsubscribed: nothing more arrives
    }
}
