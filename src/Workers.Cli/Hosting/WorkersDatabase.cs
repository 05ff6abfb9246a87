using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Workers.Fleet.Housekeeping;
using Workers.Fleet.Resilience;
using Workers.Postgres.Cluster;
using Workers.Postgres.Migrations;

namespace Workers.Cli.Hosting;

/// <summary>Where the database is: <c>ConnectionStrings:Workers</c>, or the embedded local cluster under <c>Database:LocalRoot</c>.
/// Bound once when the host is built (<see cref="CliHost"/>).</summary>
public sealed class DatabaseSettings
{
    /// <summary><c>ConnectionStrings:Workers</c> as configured (not yet checked: <see cref="WorkersDatabase.ConfiguredConnectionString"/> checks it).</summary>
    /// <value>The default value is null: the embedded local cluster.</value>
    public string? ConnectionString { get; set; }

    /// <summary><c>Database:LocalRoot</c>: where the embedded local cluster lives.</summary>
    /// <value>The default value is null: <see cref="LocalCluster.DefaultRoot"/>.</value>
    public string? LocalRoot { get; set; }
}

/// <summary>
/// The process's database, for every command: the configured server, or the embedded local cluster
/// when none is configured (started if needed), migrated when opened. The command opens it
/// (<see cref="OpenAsync"/>); housekeeping services wait for that (<see cref="IWorkersDatabase"/>), so a
/// command that refuses to start never has a service touching the database.
/// </summary>
public sealed class WorkersDatabase(IOptions<DatabaseSettings> settings, ILoggerFactory loggers, TimeProvider time)
    : IWorkersDatabase, IAsyncDisposable, IDisposable
{
    private readonly DatabaseSettings _settings = settings.Value;
    private readonly SemaphoreSlim _opening = new(1, 1);
    private readonly TaskCompletionSource<NpgsqlDataSource> _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private NpgsqlDataSource? _dataSource;

    /// <summary>The configured connection string, checked (<see cref="CheckConnectionString"/>); null when the local cluster is used.</summary>
    /// <exception cref="ArgumentException">It is not a valid connection string (the message never contains it).</exception>
    public string? ConfiguredConnectionString =>
        _settings.ConnectionString is { Length: > 0 } cs ? CheckConnectionString(cs) : null;

    /// <summary>
    /// Parses <paramref name="connectionString"/> once, so a malformed one fails here with a message that
    /// cannot leak it: Npgsql names the text it could not take as a keyword, which for an unquoted
    /// password holding ';' is the rest of the password. Only keywords Npgsql knows are named.
    /// </summary>
    /// <returns><paramref name="connectionString"/>, unchanged.</returns>
    public static string CheckConnectionString(string connectionString)
    {
        try
        {
            _ = new NpgsqlConnectionStringBuilder(connectionString);
            return connectionString;
        }
        catch (ArgumentException e)
        {
            var known = e.ParamName is { Length: > 0 } k && new NpgsqlConnectionStringBuilder().ContainsKey(k);
            throw new ArgumentException("ConnectionStrings:Workers is not a valid PostgreSQL connection string: " +
                (known ? $"the value of '{e.ParamName}' is not valid" : "a part of it is neither a known keyword nor a keyword=value pair") +
                ". Quote values that hold ';' or '=' (Password='...'); see https://www.npgsql.org/doc/connection-string-parameters.html");
        }
    }

    /// <summary>The embedded local cluster (Database:LocalRoot, or its default folder); nothing is started.</summary>
    public LocalCluster LocalCluster() =>
        new(_settings.LocalRoot is { Length: > 0 } root ? root : Postgres.Cluster.LocalCluster.DefaultRoot(), loggers.CreateLogger<LocalCluster>());

    /// <summary>The connection string to use: the configured one, or the local cluster's (started if needed). Nothing is migrated.</summary>
    public async Task<string> ConnectionStringAsync(CancellationToken ct) => ConfiguredConnectionString ?? await LocalCluster().StartAsync(ct);

    /// <summary>The database, migrated: the configured server, or the embedded local cluster (started if needed). Opened once per process.</summary>
    public async Task<NpgsqlDataSource> OpenAsync(CancellationToken ct)
    {
        await _opening.WaitAsync(ct);
        try
        {
            if (_dataSource is not null) return _dataSource;
            var cs = await ConnectionStringAsync(ct);
            var ds = new NpgsqlDataSourceBuilder(cs) { Name = "workers" }.Build();
            try { await new MigrationRunner(ds, loggers.CreateLogger<MigrationRunner>()).MigrateAsync(ct: ct); }
            catch { await ds.DisposeAsync(); throw; }
            _opened.TrySetResult(ds);
            return _dataSource = ds;
        }
        finally { _opening.Release(); }
    }

    /// <summary>
    /// <see cref="OpenAsync"/> for long-running node processes (run, worker): a database that is down at
    /// start-up is waited for with backoff (logged), instead of failing the process and having the
    /// supervisor count it as a crash. Interactive commands fail fast instead.
    /// </summary>
    public async Task<NpgsqlDataSource> OpenWhenUpAsync(CancellationToken ct) =>
        await DatabaseRetry.Forever(loggers.CreateLogger<WorkersDatabase>(), time).ExecuteAsync(async t => await OpenAsync(t), ct);

    /// <summary>The database once this command has opened it (housekeeping services wait here).</summary>
    public Task<NpgsqlDataSource> WhenOpenAsync(CancellationToken ct) => _opened.Task.WaitAsync(ct);

    public async ValueTask DisposeAsync()
    {
        if (_dataSource is not null) await _dataSource.DisposeAsync();
        _opening.Dispose();
    }

    public void Dispose()
    {
        _dataSource?.Dispose();
        _opening.Dispose();
    }
}
