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
        Assert.Equal([OnnxSession.CpuProvider], session.NodesPerProvider.Keys);
        Assert.True(session.NodesPerProvider[OnnxSession.CpuProvider] > 0);
        Assert.Null(session.FallbackReason);
    }

    [Fact]
    public void Auto_WithoutCuda_FallsBackToCpu_WarningLoudlyWithOrtsOwnReason()
    {
        var logger = new ListLogger();

        using var session = OnnxSession.Create(fixture.Environment, fixture.SileroV5, new OnnxSessionOptions(), logger);

        Assert.Equal(OnnxSession.CpuProvider, session.ExecutionProvider);
        Assert.NotNull(session.FallbackReason);
        // ORT's explanation names the library it could not load and the loader's error, which is
        // what a person needs; "Failed to load shared library" alone would not be.
        Assert.Contains("libonnxruntime_providers_shared.so", session.FallbackReason);
        Assert.Contains("cannot open shared object file", session.FallbackReason);
        var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains("falling back to CPU", warning.Message);
        Assert.Contains("cannot open shared object file", warning.Message);
    }

    [Fact]
    public void Auto_WhenOnlyAppendFails_TheReasonCarriesTheLineOrtLogged_NotJustItsStatus()
    {
        // With every CUDA option at ORT's default nothing is configured, so the first call that
        // needs the provider library is SessionOptionsAppendExecutionProvider_CUDA_V2. Its status says
        // only "Failed to load shared library"; the cause goes to the logger at ERROR.
        var options = new OnnxSessionOptions { CudnnConvAlgoSearch = CudnnConvAlgoSearch.Exhaustive };

        using var session = OnnxSession.Create(fixture.Environment, fixture.SileroV5, options);

        Assert.Equal(OnnxSession.CpuProvider, session.ExecutionProvider);
        Assert.Contains("Failed to load shared library", session.FallbackReason);
        Assert.Contains("ORT log:", session.FallbackReason);
        Assert.Contains("libonnxruntime_providers_shared.so: cannot open shared object file", session.FallbackReason);
        Assert.Contains(OrtEnvironment.Log.Snapshot(), l => l.Severity == OrtLogSeverity.Error && l.Message.Contains("cannot open shared object file"));
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
        Assert.Contains("cannot open shared object file", e.Message);
        Assert.Contains("cannot open shared object file", e.Reason);
        Assert.Contains("LibraryPath", e.Message);
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
    public void OptionsNamingAnotherLibrary_ThanTheLoadedOne_AreRefused()
    {
        var options = new OnnxSessionOptions { ExecutionProvider = OnnxExecutionProvider.Cpu, LibraryPath = "/opt/onnxruntime-gpu/lib/libonnxruntime.so.1" };

        var e = Assert.Throws<ArgumentException>(() => OnnxSession.Create(fixture.Environment, fixture.SileroV5, options));

        Assert.Contains("/opt/onnxruntime-gpu/lib/libonnxruntime.so.1", e.Message);
        Assert.Contains(fixture.Environment.LibraryPath, e.Message);
        Assert.Same(fixture.Environment, OrtEnvironment.Load(fixture.Catalog, fixture.ModelsRoot));
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
    public void DisposingATensorWhileBound_DoesNotFreeWhatOrtStillUses()
    {
        using var session = OnnxSession.Create(fixture.Environment, fixture.SileroV5, Cpu);
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
        Assert.Throws<ObjectDisposedException>(() => input.Span.Length);
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

        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Debug && e.Message.StartsWith("onnxruntime [") && e.Message.Contains("Initializing session"));
        var count = logger.Entries.Count;
        using (var session = OnnxSession.Create(fixture.Environment, fixture.SileroV5, new OnnxSessionOptions { CudnnConvAlgoSearch = CudnnConvAlgoSearch.Exhaustive }))
        {
        }
        Assert.Equal(count, logger.Entries.Count); // unsubscribed: nothing more arrives
    }
}
