using System.Net.Sockets;
using Npgsql;
using Workers.Testing;

namespace Workers.Postgres.Tests;

/// <summary>
/// Issue 14: the transient-error rule lives in Workers.Postgres (<see cref="PostgresErrors.IsTransient"/>); the failover
/// cases against a real primary and standby are in Workers.Fleet.Tests (DatabaseRetryFailoverTests), through DatabaseRetry.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresErrorsTests(PostgresFixture pg)
{
    [Fact]
    public async Task A_connection_the_server_terminated_is_transient_and_a_missing_table_is_not()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var victim = await db.DataSource.OpenConnectionAsync();
        await using (var pid = new NpgsqlCommand("SELECT pg_backend_pid()", victim))
        {
            var id = (int)(await pid.ExecuteScalarAsync())!;
            await using var admin = await db.DataSource.OpenConnectionAsync();
            await using var kill = new NpgsqlCommand("SELECT pg_terminate_backend(@pid)", admin);
            kill.Parameters.AddWithValue("pid", id);
            Assert.True((bool)(await kill.ExecuteScalarAsync())!);
        }
        await using (var after = new NpgsqlCommand("SELECT 1", victim))
        {
            var terminated = await Assert.ThrowsAnyAsync<NpgsqlException>(() => after.ExecuteScalarAsync());
            Assert.True(PostgresErrors.IsTransient(terminated), $"{terminated.GetType().Name}: {terminated.Message}");
        }

        await using var conn = await db.DataSource.OpenConnectionAsync();
        await using var missing = new NpgsqlCommand("SELECT * FROM no_such_table", conn);
        var undefined = await Assert.ThrowsAsync<PostgresException>(() => missing.ExecuteScalarAsync());
        Assert.False(PostgresErrors.IsTransient(undefined), undefined.Message);
    }

    [Fact]
    public void A_failover_in_progress_is_transient_only_while_every_host_failed_transiently()
    {
        Assert.True(PostgresErrors.IsTransient(new NpgsqlException("No suitable host was found.")));
        Assert.True(PostgresErrors.IsTransient(new NpgsqlException("Unable to connect to a suitable host.",
            new AggregateException(new NpgsqlException("Failed to connect", new SocketException((int)SocketError.ConnectionRefused)),
                new PostgresException("the database system is starting up", "FATAL", "FATAL", PostgresErrorCodes.CannotConnectNow)))));
        Assert.False(PostgresErrors.IsTransient(new NpgsqlException("Unable to connect to a suitable host.",
            new AggregateException(new PostgresException("password authentication failed", "FATAL", "FATAL", PostgresErrorCodes.InvalidPassword)))));
        Assert.False(PostgresErrors.IsTransient(new InvalidOperationException("not a database error")));
    }

    [Fact]
    public void A_failover_in_progress_is_an_unavailable_database_and_a_deadlock_is_not()
    {
        // The dashboard answers 503 + Retry-After for these, not 500 (it used a narrower copy of the rule that missed failovers).
        Assert.True(PostgresErrors.IsUnavailable(new NpgsqlException("No suitable host was found.")));
        Assert.True(PostgresErrors.IsUnavailable(new NpgsqlException("Unable to connect to a suitable host.",
            new AggregateException(new NpgsqlException("Failed to connect", new SocketException((int)SocketError.ConnectionRefused))))));
        Assert.True(PostgresErrors.IsUnavailable(new PostgresException("terminating connection due to administrator command", "FATAL", "FATAL", PostgresErrorCodes.AdminShutdown)));
        var deadlock = new PostgresException("deadlock detected", "ERROR", "ERROR", PostgresErrorCodes.DeadlockDetected);
        Assert.True(PostgresErrors.IsTransient(deadlock));
        Assert.False(PostgresErrors.IsUnavailable(deadlock));
        Assert.False(PostgresErrors.IsUnavailable(new PostgresException("relation does not exist", "ERROR", "ERROR", PostgresErrorCodes.UndefinedTable)));
    }
}
