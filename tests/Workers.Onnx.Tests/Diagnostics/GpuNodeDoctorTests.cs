namespace Workers.Onnx.Tests.Diagnostics;

[Collection(OnnxCollection.Name)]
public sealed class GpuNodeDoctorTests(OnnxFixture fixture)
{
    [Fact]
    public void OnThisCpuMachine_SaysNo_NamingEachMissingPiece()
    {
        var report = GpuNodeDoctor.Run(fixture.Environment, fixture.SileroV5);
        var byName = report.Checks.ToDictionary(c => c.Name);

        Assert.False(report.CanRunGpuWorkers);
        Assert.False(byName["ONNX Runtime GPU build"].Ok);
        Assert.Contains("is the CPU build", byName["ONNX Runtime GPU build"].Detail);
        Assert.Contains("-p:WorkersGpu=true", byName["ONNX Runtime GPU build"].Detail);
        foreach (var library in new[] { "libcuda.so.1", "libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libcudnn.so.9" })
            Assert.Contains(report.Checks, c => !c.Ok && c.Detail.StartsWith(library + " not found", StringComparison.Ordinal));
        Assert.Contains("cuDNN 9", byName.Keys);
        Assert.Contains("libcudnn9-cuda-13", byName["cuDNN 9"].Detail);
        Assert.False(byName["nvidia-smi"].Ok);
        Assert.False(byName["visible GPUs"].Ok);
        Assert.False(byName["CUDA session"].Ok);
        Assert.Contains("CUDA execution provider is not enabled in this build", byName["CUDA session"].Detail);
        var auto = byName["ExecutionProvider=auto"];
        Assert.False(auto.Required);
        Assert.Contains("runs on CPUExecutionProvider", auto.Detail);
        Assert.StartsWith("MISSING cuDNN 9: libcudnn.so.9 not found", byName["cuDNN 9"].ToString());
    }

    [Fact]
    public void ALibraryThatLoads_IsReportedPresent_WithWhereTheLoaderFoundIt()
    {
        var check = GpuNodeDoctor.CheckLibrary("C library", "libc.so.6", "libc6");

        Assert.True(check.Ok);
        Assert.Matches(@"^ok +C library: libc\.so\.6 loads \(/.*libc\.so\.6\)$", check.ToString());
    }
}
