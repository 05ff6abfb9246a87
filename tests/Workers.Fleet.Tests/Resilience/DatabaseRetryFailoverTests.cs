using Npgsql;
using Workers.Fleet.Resilience;
using Workers.Postgres.Cluster;
using Workers.Postgres;

namespace Workers.Fleet.Tests.Resilience;

/// <summary>
/// What a worker with a two-host connection string sees while the standby is being promoted, against real servers:
/// the primary is dead and the standby still read-only. Npgsql's error for that moment must count as transient, or
/// every worker of the fleet exits during the failover instead of waiting for it (CI saw exactly that when a
/// promotion took 5 s).
/// </summary>
public sealed class DatabaseRetryFailoverTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine(
        Environment.GetEnvironmentVariable("WORKERS_TEST_PG_ROOT") is { Length: > 0 } r ? r : Path.GetTempPath(), $"retry-{Guid.NewGuid():N}"[..14]);
    private LocalCluster _primary = null!;
    private LocalCluster _standby = null!;

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        File.SetUnixFileMode(_root, (UnixFileMode)0b111_101_101);
        _primary = new LocalCluster(Path.Combine(_root, "primary"), durable: false);
        _standby = new LocalCluster(Path.Combine(_root, "standby"), durable: false);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _primary.DestroyAsync();
        await _standby.DestroyAsync();
        Directory.Delete(_root, true);
    }

    [Fact]
    public async Task No_writable_host_during_a_promotion_is_transient_and_the_retry_reaches_the_promoted_standby()
    {
        var primaryCs = await _primary.StartAsync();
        await _standby.StartStandbyAsync(_primary);
        var builder = new NpgsqlConnectionStringBuilder(primaryCs)
        {
            Host = $"127.0.0.1:{_primary.Port},127.0.0.1:{_standby.Port}",
            TargetSessionAttributes = "read-write",
            Pooling = false,
            Timeout = 5,
        };
        var onlyStandby = new NpgsqlConnectionStringBuilder(builder.ConnectionString) { Host = $"127.0.0.1:{_standby.Port},localhost:{_standby.Port}" }; // Npgsql wants several hosts for read-write

        // Both hosts up, the standby read-only: "No suitable host was found." (no inner exception).
        var wrongKind = await Assert.ThrowsAnyAsync<NpgsqlException>(async () => { await using var c = new NpgsqlConnection(onlyStandby.ConnectionString); await c.OpenAsync(); });
        Assert.True(PostgresErrors.IsTransient(wrongKind), $"{wrongKind.GetType().Name}: {wrongKind.Message} (inner: {wrongKind.InnerException?.GetType().Name})");

        // The primary dead, the standby not yet promoted: whatever Npgsql throws for the pair is transient.
        _primary.Kill();
        await Task.Delay(500); // a real process dies: wait for its port to close
        var midFailover = await Assert.ThrowsAnyAsync<NpgsqlException>(async () => { await using var c = new NpgsqlConnection(builder.ConnectionString); await c.OpenAsync(); });
        Assert.True(PostgresErrors.IsTransient(midFailover), $"{midFailover.GetType().Name}: {midFailover.Message} (inner: {midFailover.InnerException?.GetType().Name})");

        // A bad password is not: retrying it forever would hide a misconfiguration.
        var badPassword = new NpgsqlConnectionStringBuilder(onlyStandby.ConnectionString) { Host = $"127.0.0.1:{_standby.Port}", Password = "wrong", TargetSessionAttributes = "any" };
        var auth = await Assert.ThrowsAnyAsync<NpgsqlException>(async () => { await using var c = new NpgsqlConnection(badPassword.ConnectionString); await c.OpenAsync(); });
        Assert.False(PostgresErrors.IsTransient(auth), auth.Message);

        // The retry that started mid-failover ends on the promoted standby.
        var pipeline = DatabaseRetry.Forever(Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, TimeProvider.System);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var connected = pipeline.ExecuteAsync(async ct =>
        {
            await using var c = new NpgsqlConnection(builder.ConnectionString);
            await c.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("SELECT NOT pg_is_in_recovery()", c);
            return (bool)(await cmd.ExecuteScalarAsync(ct))!;
        }, timeout.Token).AsTask();
        await _standby.PromoteAsync();
        Assert.True(await connected);
    }
}
