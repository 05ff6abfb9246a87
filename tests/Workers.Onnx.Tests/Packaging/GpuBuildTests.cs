namespace Workers.Onnx.Tests.Packaging;

/// <summary>Issue 16: the GPU build, verified on a machine without a GPU by what it packages and by what
/// the published <c>workers</c> says about this node. (No test here needs a GPU; none of the project's
/// machines has one.)</summary>
public sealed class GpuBuildTests(GpuBuildFixture build) : IClassFixture<GpuBuildFixture>
{
    private Dictionary<string, string> Env(params (string Key, string Value)[] extra)
    {
        var env = new Dictionary<string, string> { ["Models__Root"] = RepositoryPaths.Models, ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" };
        foreach (var (k, v) in extra) env[k] = v;
        return env;
    }

    [Fact]
    public void Output_HoldsTheCudaProvider_AndOnlyLinuxX64Natives()
    {
        var files = Directory.EnumerateFiles(build.Output, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(build.Output, f)).ToList();

        Assert.Contains("libonnxruntime.so", files);
        Assert.Contains("libonnxruntime_providers_shared.so", files);
        Assert.Contains("libonnxruntime_providers_cuda.so", files);
        Assert.Contains("Microsoft.ML.OnnxRuntime.dll", files);
        Assert.Contains("workers", files);
        Assert.True(new FileInfo(Path.Combine(build.Output, "libonnxruntime_providers_cuda.so")).Length > 100_000_000);
        Assert.DoesNotContain(files, f => f.StartsWith("runtimes", StringComparison.Ordinal));
        Assert.DoesNotContain(files, f => f.Contains("onnxruntime", StringComparison.OrdinalIgnoreCase) && f.EndsWith(".dll", StringComparison.Ordinal)
            && f != "Microsoft.ML.OnnxRuntime.dll");
        Assert.DoesNotContain(files, f => f.EndsWith(".dylib", StringComparison.Ordinal) || f.EndsWith(".lib", StringComparison.Ordinal));
    }

    [Fact]
    public void A_node_publish_is_compiled_ahead_of_time_so_worker_processes_start_without_jitting_the_host()
    {
        // ReadyToRun code sits in the assembly beside its IL; the managed native header points at it.
        static bool ReadyToRun(string path)
        {
            using var pe = new System.Reflection.PortableExecutable.PEReader(File.OpenRead(path));
            return pe.PEHeaders.CorHeader is { ManagedNativeHeaderDirectory.Size: > 0 };
        }

        foreach (var assembly in new[] { "workers.dll", "Workers.Fleet.dll", "Workers.Pipeline.dll", "Workers.Postgres.dll", "Npgsql.dll", "Microsoft.ML.OnnxRuntime.dll" })
            Assert.True(ReadyToRun(Path.Combine(build.Output, assembly)), $"{assembly} in the publish is IL only");
        Assert.False(ReadyToRun(Path.Combine(RepositoryPaths.Root, "src", "Workers.Cli", "bin", "Release", "net10.0", "Workers.Fleet.dll")),
            "the check cannot tell: the build's own (IL-only) output looks compiled ahead of time too");
    }

    [Fact]
    public async Task Doctor_OnThisNode_NamesWhatIsMissing_AndExitsOne()
    {
        var (code, output) = await Exec.RunAsync(Path.Combine(build.Output, "workers"), build.Output, TimeSpan.FromMinutes(3), Env(), "doctor");

        Assert.Equal(1, code);
        Assert.Matches(@"ok +ONNX Runtime GPU build: ONNX Runtime 1\.32\.0 at .*libonnxruntime\.so, providers .*CUDAExecutionProvider", output);
        Assert.Contains("MISSING NVIDIA driver (R580+): libcuda.so.1 not found", output);
        Assert.Contains("MISSING CUDA 13 cuBLASLt: libcublasLt.so.13 not found", output);
        Assert.Contains("MISSING cuDNN 9: libcudnn.so.9 not found", output);
        Assert.Contains("MISSING nvidia-smi", output);
        Assert.Contains("MISSING visible GPUs", output);
        Assert.Contains("MISSING CUDA session", output);
        Assert.Contains("doctor: this node cannot run GPU workers", output);
    }

    [Fact]
    public async Task Auto_FallsBackToCpu_NamingTheMissingCudaLibrary()
    {
        // The doctor's auto line is OnnxSession.Create with ExecutionProvider=auto in the GPU build:
        // ORT's own reason, caught through the environment's logging callback, names the library.
        var (_, output) = await Exec.RunAsync(Path.Combine(build.Output, "workers"), build.Output, TimeSpan.FromMinutes(3), Env(), "doctor");

        var auto = Assert.Single(output.Split('\n'), l => l.Contains("ExecutionProvider=auto", StringComparison.Ordinal));
        Assert.Contains("runs on CPUExecutionProvider", auto);
        Assert.Matches(@"lib(cublasLt|cublas|cudart|curand|cuda)\.so\.1[03]?: cannot open shared object file", auto);
    }

    [Fact]
    public async Task Cuda_RefusesToStartAWorker_WithExitCodeOne_NamingCuda13Cudnn9AndTheDoctor()
    {
        var (code, output) = await Exec.RunAsync(Path.Combine(build.Output, "workers"), build.Output, TimeSpan.FromMinutes(3),
            Env(("Inference__ExecutionProvider", "cuda")), "worker", "--slot", "0");

        Assert.Equal(1, code);
        Assert.Contains("ExecutionProvider=cuda", output);
        Assert.Contains("CUDA 13", output);
        Assert.Contains("cuDNN 9", output);
        Assert.Contains("workers doctor", output);
        Assert.Contains("cannot open shared object file", output);
    }
}
