using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Workers.Core.Options;
using Workers.Fleet.Gpus;
using Workers.Postgres.Fleet;

namespace Workers.Fleet.Housekeeping;

/// <summary>
/// GPU telemetry of <c>workers run</c>: once the node's plan has GPU slots
/// (<see cref="Plan.HasGpuSlots"/>), samples every GPU at once and then every
/// <c>Fleet:TelemetrySeconds</c> (default 15 s) into <c>gpu_telemetry</c> (<see cref="GpuTelemetrySampler"/>).
/// A node without GPU slots samples nothing.
/// </summary>
public sealed class GpuTelemetryService(
    IWorkersDatabase database,
    IOptions<FleetOptions> fleet,
    GpuTelemetryService.Plan plan,
    TimeProvider time,
    ILogger<GpuTelemetrySampler> logger) : BackgroundService
{
    /// <summary>Whether this node runs GPU slots: decided by the command once it has its slot plan.</summary>
    public sealed class Plan
    {
        private readonly TaskCompletionSource<bool> _gpuSlots = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void HasGpuSlots(bool yes) => _gpuSlots.TrySetResult(yes);

        internal Task<bool> Decided => _gpuSlots.Task;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            if (!await plan.Decided.WaitAsync(stoppingToken)) return;
            var o = fleet.Value;
            var registry = new WorkerRegistry(await database.WhenOpenAsync(stoppingToken), time);
            var sampler = GpuTelemetrySampler.Create(o.NvidiaSmi is { Length: > 0 } s ? s : NvidiaSmi.DefaultPath, o.Node,
                TimeSpan.FromSeconds(o.TelemetrySeconds), registry, time, logger);
            await sampler.RunAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }
}
