using Workers.Onnx;
using Workers.Testing;

namespace Workers.Bench.Tests;

public sealed class SileroBenchTests
{
    [Fact]
    public async Task Run_ReportsMedianAndXRealtime_PerBatchSize()
    {
        var catalog = await Models.CatalogAsync();
        var options = new SileroBenchOptions { BatchSizes = [1, 8], WarmupRuns = 20, MinRuns = 50, MaxRuns = 50, MinSecondsPerBatchSize = 0 };

        var report = SileroBench.Run(OrtEnvironment.Load(), catalog.Resolve(ModelCatalog.SileroVadV5, Models.Root), options);

        Assert.Equal([1, 8], report.Results.Select(r => r.BatchSize));
        Assert.All(report.Results, r =>
        {
            Assert.Equal(50, r.Runs);
            Assert.Equal(0, r.BytesPerRun); // issue 16: the IoBinding hot path allocates nothing
            Assert.True(r.MedianMicroseconds > 0);
            Assert.True(r.P90Microseconds >= r.MedianMicroseconds);
            Assert.Equal(r.BatchSize * 0.032 / (r.MedianMicroseconds / 1e6), r.XRealtime, 6);
            Assert.InRange(r.MeanMicroseconds, r.MedianMicroseconds / 2, double.MaxValue); // every run counted, none dropped
            Assert.Equal(r.BatchSize * 0.032 / (r.MeanMicroseconds / 1e6), r.SustainedXRealtime, 6);
        });
        Assert.Equal(OnnxSession.CpuProvider, report.ExecutionProvider);
        Assert.Contains("x-realtime", report.ToTable());
        Assert.Contains("sustained", report.ToTable());
        Assert.Contains("bytes/run", report.ToTable());
        Assert.Equal("1.32.0", report.OnnxRuntimeVersion);
    }
}
