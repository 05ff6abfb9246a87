using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Workers.Fleet.Worker;

namespace Workers.Fleet.Housekeeping;

/// <summary>
/// Which housekeeping services each kind of process runs, composed the way Hangfire's
/// BackgroundJobServer composes its processes: each is a <c>BackgroundService</c> with its own
/// documented interval, started with the process's host and stopped with it.
/// <list type="table">
/// <item><term>worker process (<c>workers worker</c>)</term><description><see cref="LeaseRescuer"/>, <see cref="RetentionPruner"/>, <see cref="RegistryHeartbeat"/></description></item>
/// <item><term>node supervisor (<c>workers run</c>)</term><description><see cref="GpuTelemetryService"/></description></item>
/// <item><term>dashboard (<c>workers serve</c>)</term><description><see cref="LeaseRescuer"/> (pruning there is Hangfire's recurring <c>workers-retention-prune</c>)</description></item>
/// </list>
/// Each expects an <see cref="IWorkersDatabase"/>, <c>IOptions</c> of its settings and a <see cref="TimeProvider"/> registered.
/// </summary>
public static class Housekeeping
{
    /// <summary>A worker process's housekeeping; the command attaches its <see cref="ShardWorker"/> to <see cref="RegistryHeartbeat.Target"/>.</summary>
    public static IServiceCollection AddWorkerProcessHousekeeping(this IServiceCollection services)
    {
        services.AddHostedService<LeaseRescuer>();
        services.AddHostedService<RetentionPruner>();
        services.TryAddSingleton<RegistryHeartbeat.Target>();
        services.AddHostedService<RegistryHeartbeat>();
        return services;
    }

    /// <summary><c>workers run</c>: GPU telemetry once the command says the node has GPU slots.</summary>
    public static IServiceCollection AddSupervisorHousekeeping(this IServiceCollection services)
    {
        services.TryAddSingleton<GpuTelemetryService.Plan>();
        services.AddHostedService<GpuTelemetryService>();
        return services;
    }

    /// <summary><c>workers serve</c>: the lease rescuer, so expired leases are requeued even with no worker running.</summary>
    public static IServiceCollection AddDashboardHousekeeping(this IServiceCollection services)
    {
        services.AddHostedService<LeaseRescuer>();
        return services;
    }
}
