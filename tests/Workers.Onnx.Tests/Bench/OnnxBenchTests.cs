namespace Workers.Onnx.Tests.Bench;

[Collection(OnnxCollection.Name)]
public sealed class OnnxBenchTests(OnnxFixture fixture)
{
    [Fact]
    public void RunSilero_ReportsMedianAndXRealtime_PerBatchSize()
    {
        var options = new SileroBenchOptions { BatchSizes = [1, 8], WarmupRuns = 20, MinRuns = 50, MaxRuns = 50, MinSecondsPerBatchSize = 0 };

        var report = OnnxBench.RunSilero(fixture.Environment, fixture.SileroV5, options);

        Assert.Equal([1, 8], report.Results.Select(r => r.BatchSize));
        Assert.All(report.Results, r =>
        {
            Assert.Equal(50, r.Runs);
            Assert.Equal(0, r.BytesPerRun); // issue 16: the IoBinding hot path allocates nothing
            Assert.True(r.MedianMicroseconds > 0);
            Assert.True(r.P90Microseconds >= r.MedianMicroseconds);
            Assert.Equal(r.BatchSize * 0.032 / (r.MedianMicroseconds / 1e6), r.XRealtime, 6);
        });
        Assert.Equal(OnnxSession.CpuProvider, report.ExecutionProvider);
        Assert.Contains("x-realtime", report.ToTable());
        Assert.Contains("bytes/run", report.ToTable());
        Assert.Equal("1.32.0", report.OnnxRuntimeVersion);
    }
}
