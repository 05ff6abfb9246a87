using Microsoft.Extensions.Logging.Abstractions;
using Workers.Core.Options;
using Workers.Fleet.Gpus;
using Workers.Fleet.Housekeeping;
using Workers.Testing;
using FakeClock = Microsoft.Extensions.Time.Testing.FakeTimeProvider;
using MsOptions = Microsoft.Extensions.Options.Options;

namespace Workers.Fleet.Tests.Housekeeping;

/// <summary>Issue 14: GPU telemetry is a housekeeping service of `workers run`, sampling only once the node's plan has GPU slots.</summary>
[Collection(PostgresCollection.Name)]
public sealed class GpuTelemetryServiceTests(PostgresFixture pg) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-gpu-service-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task A_node_without_GPU_slots_never_asks_nvidia_smi()
    {
        await using var db = await pg.CreateSchemaAsync();
        var plan = new GpuTelemetryService.Plan();
        using var service = new GpuTelemetryService(new OpenDatabase(db.DataSource), MsOptions.Create(new FleetOptions { NodeName = "n", NvidiaSmi = Smi() }),
            plan, new FakeClock(), NullLogger<GpuTelemetrySampler>.Instance);
        await service.StartAsync(CancellationToken.None);
        plan.HasGpuSlots(false);
        await service.ExecuteTask!.WaitAsync(TimeSpan.FromMinutes(1)); // done at once: nothing to sample
        Assert.False(File.Exists(Path.Combine(_dir, "asked")));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM gpu_telemetry"));
    }

    [Fact]
    public async Task A_node_with_GPU_slots_samples_its_GPUs_into_the_database_at_once()
    {
        await using var db = await pg.CreateSchemaAsync();
        var plan = new GpuTelemetryService.Plan();
        using var service = new GpuTelemetryService(new OpenDatabase(db.DataSource), MsOptions.Create(new FleetOptions { NodeName = "node-gpu", NvidiaSmi = Smi() }),
            plan, new FakeClock(), NullLogger<GpuTelemetrySampler>.Instance);
        await service.StartAsync(CancellationToken.None);
        plan.HasGpuSlots(true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (await db.ScalarAsync<long>("SELECT count(*) FROM gpu_telemetry WHERE node = 'node-gpu'") == 0)
            await Task.Delay(50, timeout.Token); // waiting on the fake nvidia-smi, a real child process
        await service.StopAsync(CancellationToken.None);
        Assert.True(File.Exists(Path.Combine(_dir, "asked")));
        Assert.False(service.ExecuteTask!.IsFaulted);
    }

    private string Smi()
    {
        var smi = Path.Combine(_dir, "nvidia-smi");
        File.WriteAllText(smi, "#!/bin/sh\ntouch \"$(dirname \"$0\")/asked\"\necho '0, GPU-a, A10, 5, 100, 23028, 40'\n");
        File.SetUnixFileMode(smi, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return smi;
    }
}
