using Workers.Onnx;

namespace Workers.Stages.Tests;

/// <summary>A stage's CUDA provider that cannot be enabled is typed (issue 14), read from the real ONNX
/// Runtime of this build (the CPU package here, which carries no CUDA provider).</summary>
public sealed class StageSessionOptionsTests
{
    [Fact]
    public void Cuda_that_this_build_cannot_enable_is_an_ExecutionProviderUnavailableException()
    {
        var e = Assert.Throws<ExecutionProviderUnavailableException>(() => StageSessionOptions.Create(OnnxExecutionProvider.Cuda, 0, 1));

        Assert.Equal(OnnxSession.CudaProvider, e.Provider);
        Assert.False(string.IsNullOrWhiteSpace(e.Reason));
        Assert.Contains("workers doctor", e.Message);
        // The CPU package lacks the CUDA entry point altogether; a GPU build on a node without CUDA reports an ORT status.
        Assert.True(e.InnerException is EntryPointNotFoundException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException, e.InnerException?.GetType().Name);
    }

    [Fact]
    public void Cuda_with_graphs_that_this_build_cannot_enable_is_typed_too()
    {
        var e = Assert.Throws<ExecutionProviderUnavailableException>(() => StageSessionOptions.Create(OnnxExecutionProvider.Cuda, 0, 1, cudaGraphs: true));
        Assert.Contains("workers doctor", e.Message);
        using var cpu = StageSessionOptions.Create(OnnxExecutionProvider.Cpu, 0, 1, cudaGraphs: true); // nothing to capture on CPU
    }

    [Fact]
    public void Auto_asks_for_cuda_too_and_cpu_never_does()
    {
        Assert.Throws<ExecutionProviderUnavailableException>(() => StageSessionOptions.Create(OnnxExecutionProvider.Auto, 0, 1));
        using var cpu = StageSessionOptions.Create(OnnxExecutionProvider.Cpu, 0, 2);
        Assert.Equal(2, cpu.IntraOpNumThreads);
    }
}
