using Microsoft.Extensions.Logging;
using Workers.Postgres.Fleet;

namespace Workers.Fleet.Gpus;

/// <summary>One GPU's utilization, memory and temperature as nvidia-smi reports them; null where it says <c>[N/A]</c>.</summary>
public sealed record GpuTelemetry(int Index, string Uuid, string Name, double? UtilizationPercent, double? MemoryUsedMb,
    double? MemoryTotalMb, double? TemperatureC);

/// <summary>What a telemetry query found: a row per GPU, or why there are none.</summary>
/// <param name="Gpus">The GPUs; empty when <paramref name="Problem"/> is set.</param>
/// <param name="Problem">Why nvidia-smi gave no answer (missing, failed, timed out), or null.</param>
/// <param name="Skipped">Output lines that were not a GPU row (kept for the log).</param>
public sealed record GpuTelemetryResult(IReadOnlyList<GpuTelemetry> Gpus, string? Problem, IReadOnlyList<string> Skipped);

/// <summary>
/// The supervisor's GPU telemetry: samples every GPU once at start, then every
/// <c>Fleet:TelemetrySeconds</c> (default 15), and upserts each into <c>gpu_telemetry</c> as this
/// node's latest sample. A failed sample (nvidia-smi missing or hung, database down) is logged and
/// the next one is tried on time: telemetry never stops the node.
/// </summary>
public sealed partial class GpuTelemetrySampler(
    string node,
    TimeSpan interval,
    Func<CancellationToken, Task<GpuTelemetryResult>> query,
    Func<GpuSample, CancellationToken, Task> upsert,
    TimeProvider time,
    ILogger logger)
{
    /// <summary>Configuration key of the interval in seconds.</summary>
    public const string IntervalKey = "Fleet:TelemetrySeconds";

    public const int DefaultIntervalSeconds = 15;

    private string? _lastProblem;

    /// <summary>nvidia-smi at <paramref name="nvidiaSmi"/>, upserting into <paramref name="registry"/>.</summary>
    public static GpuTelemetrySampler Create(string nvidiaSmi, string node, TimeSpan interval, WorkerRegistry registry, TimeProvider time, ILogger logger) =>
        new(node, interval, ct => NvidiaSmi.QueryTelemetryAsync(nvidiaSmi, ct), (s, ct) => registry.UpsertGpuAsync(s, ct), time, logger);

    /// <summary>Samples now, then every interval until <paramref name="ct"/> is cancelled (which ends it quietly).</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        if (interval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(interval), interval, $"{IntervalKey} must be positive.");
        try
        {
            await SampleOnceAsync(ct);
            using var timer = new PeriodicTimer(interval, time);
            while (await timer.WaitForNextTickAsync(ct)) await SampleOnceAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    /// <summary>One sample of every GPU, upserted. Never throws but for cancellation.</summary>
    /// <returns>The number of GPUs written.</returns>
    public async Task<int> SampleOnceAsync(CancellationToken ct)
    {
        string? problem;
        var written = 0;
        try
        {
            var result = await query(ct);
            problem = result.Problem;
            foreach (var line in result.Skipped) LogSkipped(line);
            if (problem is null)
            {
                var now = time.GetUtcNow().UtcDateTime;
                foreach (var g in result.Gpus)
                {
                    await upsert(new GpuSample(node, g.Index, g.Uuid, g.Name, g.UtilizationPercent, g.MemoryUsedMb, g.MemoryTotalMb, g.TemperatureC, now), ct);
                    written++;
                }
                if (result.Gpus.Count == 0) problem = "nvidia-smi reports no GPUs";
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { throw; }
        catch (Exception e)
        {
            problem = $"{e.GetType().Name}: {e.Message}";
        }

        // Say so when it starts failing (or fails differently) and when it recovers, not every interval.
        if (problem is not null && problem != _lastProblem) LogFailed(problem, interval.TotalSeconds);
        else if (problem is null && _lastProblem is not null) LogRecovered(written);
        _lastProblem = problem;
        return written;
    }

    [LoggerMessage(LogLevel.Warning, "GPU telemetry: sample failed: {Problem}. The node goes on; trying again every {Seconds:0.#} s")]
    private partial void LogFailed(string problem, double seconds);

    [LoggerMessage(LogLevel.Information, "GPU telemetry: sampling again ({Gpus} GPU(s))")]
    private partial void LogRecovered(int gpus);

    [LoggerMessage(LogLevel.Debug, "GPU telemetry: ignored a line of nvidia-smi output: {Line}")]
    private partial void LogSkipped(string line);
}
