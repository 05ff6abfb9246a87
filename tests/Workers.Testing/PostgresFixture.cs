using Npgsql;
using Workers.Postgres.Cluster;
using Workers.Postgres.Migrations;
using Xunit;

namespace Workers.Testing;

/// <summary>
/// One PostgreSQL server for a test assembly: the one named by <c>WORKERS_TEST_CONNECTION</c>
/// (the test script starts one throwaway cluster for the whole run), or else a throwaway local
/// cluster of our own, removed afterwards. Each test gets its own schema, so tests run in parallel.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private LocalCluster? _ownCluster;

    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var env = Environment.GetEnvironmentVariable("WORKERS_TEST_CONNECTION");
        if (!string.IsNullOrEmpty(env))
        {
            ConnectionString = env;
            return;
        }
        // ops/test.sh points WORKERS_TEST_PG_ROOT at a folder it removes (clusters and all) when the run ends,
        // even if a test host crashed before its DisposeAsync.
        var parent = Environment.GetEnvironmentVariable("WORKERS_TEST_PG_ROOT") is { Length: > 0 } r ? r : Path.GetTempPath();
        _ownCluster = new LocalCluster(Path.Combine(parent, $"pg-{Environment.ProcessId}-{Guid.NewGuid():N}"), durable: false);
        ConnectionString = await _ownCluster.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_ownCluster is not null) await _ownCluster.DestroyAsync();
    }

    /// <summary>A fresh schema; its connection string puts it first on the search path.</summary>
    public async Task<TestSchema> CreateSchemaAsync(bool migrate = true)
    {
        var name = "t_" + Guid.NewGuid().ToString("N")[..16];
        await using (var admin = NpgsqlDataSource.Create(ConnectionString))
        await using (var cmd = admin.CreateCommand($"CREATE SCHEMA {name}")) // generated identifier, not input
            await cmd.ExecuteNonQueryAsync();
        var cs = new NpgsqlConnectionStringBuilder(ConnectionString) { SearchPath = name, MaxPoolSize = 100 }.ConnectionString;
        var ds = NpgsqlDataSource.Create(cs);
        if (migrate) await new MigrationRunner(ds).MigrateAsync();
        return new TestSchema(name, cs, ds, ConnectionString);
    }
}

public sealed class TestSchema(string name, string connectionString, NpgsqlDataSource dataSource, string adminConnectionString) : IAsyncDisposable
{
    public string Name { get; } = name;
    public string ConnectionString { get; } = connectionString;
    public NpgsqlDataSource DataSource { get; } = dataSource;

    public async Task<T> ScalarAsync<T>(string sql, params (string Name, object Value)[] args)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var (n, v) in args) cmd.Parameters.AddWithValue(n, v);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await using var admin = NpgsqlDataSource.Create(adminConnectionString);
        await using var cmd = admin.CreateCommand($"DROP SCHEMA IF EXISTS {Name} CASCADE");
        await cmd.ExecuteNonQueryAsync();
    }
}

/// <summary>Each test assembly declares <c>[CollectionDefinition(PostgresCollection.Name)]</c> on a class
/// implementing <c>ICollectionFixture&lt;PostgresFixture&gt;</c> (xunit wants it in the test assembly).</summary>
public static class PostgresCollection
{
    public const string Name = "postgres";
}
