using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Workers.Core.Options;

namespace Workers.Fleet.Housekeeping;

/// <summary>A process that keeps a row in the worker registry (<see cref="Worker.ShardWorker"/>).</summary>
public interface IRegistryBeat
{
    /// <summary>Completes once the row exists.</summary>
    Task Registered { get; }

    /// <summary>One beat: alive, on which shard, claim timings, clock offset. Never throws on a database
    /// outage (the next beat tries again); does nothing once the process has marked its row stopped.</summary>
    Task BeatRegistryAsync(CancellationToken ct);
}

/// <summary>
/// The worker registry heartbeat, every <c>Queue:HeartbeatSeconds</c> (default 10 s) from the
/// worker's registration on, idle or busy, so a row whose heartbeat ages means a dead process
/// (the fleet page, <c>status --fleet</c>). Separate from the shard lease's heartbeat, which only
/// runs while a shard does.
/// </summary>
public sealed class RegistryHeartbeat(RegistryHeartbeat.Target target, IOptions<QueueOptions> options, TimeProvider time) : BackgroundService
{
    /// <summary>The process to beat for, given by the command once it has built it (after loading its models).</summary>
    public sealed class Target
    {
        private readonly TaskCompletionSource<IRegistryBeat> _worker = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Attach(IRegistryBeat worker) => _worker.TrySetResult(worker);

        internal Task<IRegistryBeat> Attached => _worker.Task;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var worker = await target.Attached.WaitAsync(stoppingToken);
            await worker.Registered.WaitAsync(stoppingToken);
            using var timer = new PeriodicTimer(options.Value.Heartbeat, time);
            while (await timer.WaitForNextTickAsync(stoppingToken)) await worker.BeatRegistryAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }
}
