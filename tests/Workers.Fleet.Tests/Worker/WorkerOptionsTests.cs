using Workers.Fleet.Worker;

namespace Workers.Fleet.Tests.Worker;

/// <summary>Issue 10: the worker's cores are split between decoder threads and intra-op threads, never more between them.</summary>
public sealed class WorkerOptionsTests
{
    [Theory]
    [InlineData(null, 1, 1, 1)]   // one core: one of each, taking turns
    [InlineData(null, 2, 1, 1)]
    [InlineData(null, 8, 4, 4)]   // CPU slot: half decode
    [InlineData("0", 1, 1, 1)]
    [InlineData("0", 16, 15, 1)]  // GPU slot: every core but one decodes
    public void Automatic_split_stays_within_the_cores(string? gpu, int cores, int decoders, int intraOp)
    {
        var split = new WorkerOptions { Gpu = gpu }.SplitCores(cores);
        Assert.Equal((decoders, intraOp), split);
        Assert.True(cores == 1 || split.Decoders + split.IntraOp <= cores);
    }

    [Fact]
    public void A_set_decoder_count_is_kept_and_the_rest_goes_to_inference()
    {
        Assert.Equal((3, 5), new WorkerOptions { DecoderThreads = 3 }.SplitCores(8));
        Assert.Equal((2, 1), new WorkerOptions { DecoderThreads = 2 }.SplitCores(2)); // inference keeps one thread
    }

    [Fact]
    public void Bad_decoder_settings_are_named()
    {
        var problems = new WorkerOptions { DecoderThreads = -1, MaxDecodedMb = 0, MaxDecodedInMemoryMb = -1, DecodeGroupSeconds = double.NaN }.Validate();
        Assert.Contains(problems, p => p.Contains("Fleet:DecoderThreads"));
        Assert.Contains(problems, p => p.Contains("Fleet:MaxDecodedMb"));
        Assert.Contains(problems, p => p.Contains("Fleet:MaxDecodedInMemoryMb"));
        Assert.Contains(problems, p => p.Contains("Fleet:DecodeGroupSeconds"));
    }
}
