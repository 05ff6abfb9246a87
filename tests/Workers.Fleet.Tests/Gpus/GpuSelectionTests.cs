using Workers.Fleet.Gpus;

namespace Workers.Fleet.Tests.Gpus;

/// <summary>`workers run --gpus auto|none|0,2` (issue "Fleet", item 1).</summary>
public sealed class GpuSelectionTests
{
    private static readonly GpuQueryResult TwoGpus = new(
        [new GpuInfo(0, "GPU-a", "NVIDIA H100 80GB HBM3", 81559), new GpuInfo(1, "GPU-b", "NVIDIA H100 80GB HBM3", 81559)], null, []);

    private static readonly GpuQueryResult Broken = new([], "nvidia-smi could not be started (No such file or directory)", []);

    [Theory]
    [InlineData("auto", GpuSelectionMode.Auto)]
    [InlineData(" AUTO ", GpuSelectionMode.Auto)]
    [InlineData("none", GpuSelectionMode.None)]
    [InlineData("0, 2", GpuSelectionMode.List)]
    public void Parses_the_three_forms(string value, GpuSelectionMode mode) => Assert.Equal(mode, GpuSelection.Parse(value).Mode);

    [Fact]
    public void A_list_keeps_its_order() => Assert.Equal([2, 0], GpuSelection.Parse("2,0").Indices);

    [Theory]
    [InlineData("", "expected auto, none, or comma-separated GPU indices")]
    [InlineData("all", "expected auto, none, or comma-separated GPU indices")]
    [InlineData("0,-1", "expected auto, none, or comma-separated GPU indices")]
    [InlineData("0,,1", "expected auto, none, or comma-separated GPU indices")]
    [InlineData("1,1", "GPU 1 is listed twice")]
    public void Rejects_what_is_not_a_selection(string value, string message) =>
        Assert.Contains(message, Assert.Throws<ArgumentException>(() => GpuSelection.Parse(value)).Message);

    [Fact]
    public void Auto_takes_every_gpu_found_or_none_when_nvidia_smi_fails()
    {
        Assert.Equal(TwoGpus.Gpus, GpuSelection.Auto.Resolve(TwoGpus));
        Assert.Empty(GpuSelection.Auto.Resolve(Broken));
    }

    [Fact]
    public void None_takes_no_gpu() => Assert.Empty(GpuSelection.None.Resolve(TwoGpus));

    [Fact]
    public void A_list_takes_exactly_the_listed_gpus() =>
        Assert.Equal(["GPU-b"], GpuSelection.Parse("1").Resolve(TwoGpus).Select(g => g.Uuid));

    [Fact]
    public void A_listed_gpu_that_does_not_exist_is_an_error_listing_the_gpus_found()
    {
        var e = Assert.Throws<ArgumentException>(() => GpuSelection.Parse("0,2,5").Resolve(TwoGpus));
        Assert.Equal("--gpus 0,2,5: GPUs 2, 5 not found. nvidia-smi reports: 0: NVIDIA H100 80GB HBM3 (GPU-a, 81559 MiB); 1: NVIDIA H100 80GB HBM3 (GPU-b, 81559 MiB).", e.Message);
    }

    [Fact]
    public void A_list_when_nvidia_smi_fails_is_an_error_with_the_reason()
    {
        var e = Assert.Throws<ArgumentException>(() => GpuSelection.Parse("0").Resolve(Broken));
        Assert.StartsWith("--gpus 0: no GPUs found: nvidia-smi could not be started (No such file or directory).", e.Message);
    }
}
