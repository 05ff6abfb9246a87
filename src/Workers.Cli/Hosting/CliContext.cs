using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Workers.Core.Options;
using Workers.Fleet.Housekeeping;
using Workers.Postgres.Cluster;
using Workers.Postgres.Migrations;

namespace Workers.Cli.Hosting;

/// <summary>
/// What the commands share, resolved from the Generic Host (<see cref="CliHost"/>): configuration,
/// logging, the validated Queue options, and the database: the configured server, or the embedded
/// local cluster when none is configured. The database is opened by the command
/// (<see cref="DatabaseAsync"/>); housekeeping services wait for that (<see cref="IWorkersDatabase"/>).
/// Commands that take their services by constructor are the direction; this facade keeps the older
/// command bodies (and the benches and export) unchanged.
/// </summary>
public sealed class CliContext(IConfiguration configuration, ILoggerFactory loggerFactory, IOptions<QueueOptions> queue, TimeProvider time)
    : IWorkersDatabase, IAsyncDisposable, IDisposable
{
    private readonly SemaphoreSlim _opening = new(1, 1);
    private readonly TaskCompletionSource<NpgsqlDataSource> _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private NpgsqlDataSource? _dataSource;

    public IConfiguration Configuration { get; } = configuration;
    public ILoggerFactory LoggerFactory { get; } = loggerFactory;
    /// <summary>Queue options, validated when the host started (read lazily: hosted services are built before validation runs).</summary>
    public QueueOptions Queue => queue.Value;
    public TimeProvider Time { get; } = time;

    public ILogger Logger(string category) => LoggerFactory.CreateLogger(category);

    /// <summary>The configured pipelines (the sections of Pipelines), which `workers enqueue` and the dashboard's form accept.</summary>
    public IReadOnlyList<string> Pipelines => [.. Configuration.GetSection("Pipelines").GetChildren().Select(c => c.Key)];

    /// <summary>Fleet:NodeName, or the machine name: what the supervisor, its workers and the GPU sampler call this node.</summary>
    public string NodeName => Configuration["Fleet:NodeName"] is { Length: > 0 } n ? n : Environment.MachineName;

    /// <summary>A section bound now, a value that does not parse reported with its setting name (<see cref="Settings.Read{T}"/>).</summary>
    public T Bind<T>(string section) where T : class, new() => Settings.Read<T>(Configuration, section, _ => []);

    public string? ConfiguredConnectionString =>
        Configuration.GetConnectionString("Workers") is { Length: > 0 } cs ? Checked(cs) : null;

    /// <summary>
    /// Parses the connection string once, so a malformed one fails here with a message that cannot
    /// leak it: Npgsql names the text it could not take as a keyword, which for an unquoted
    /// password holding ';' is the rest of the password. Only keywords Npgsql knows are named.
    /// </summary>
    private static string Checked(string cs)
    {
        try
        {
            _ = new NpgsqlConnectionStringBuilder(cs);
            return cs;
        }
        catch (ArgumentException e)
        {
            var known = e.ParamName is { Length: > 0 } k && new NpgsqlConnectionStringBuilder().ContainsKey(k);
            throw new ArgumentException("ConnectionStrings:Workers is not a valid PostgreSQL connection string: " +
                (known ? $"the value of '{e.ParamName}' is not valid" : "a part of it is neither a known keyword nor a keyword=value pair") +
                ". Quote values that hold ';' or '=' (Password='...'); see https://www.npgsql.org/doc/connection-string-parameters.html");
        }
    }

    public LocalCluster LocalCluster() =>
        new(Configuration["Database:LocalRoot"] is { Length: > 0 } root ? root : Postgres.Cluster.LocalCluster.DefaultRoot(), Logger("LocalCluster"));

    /// <summary>The database, migrated: the configured server, or the embedded local cluster (started if needed).</summary>
    public async Task<NpgsqlDataSource> DatabaseAsync(CancellationToken ct)
    {
        await _opening.WaitAsync(ct);
        try
        {
            if (_dataSource is not null) return _dataSource;
            var cs = ConfiguredConnectionString ?? await LocalCluster().StartAsync(ct);
            var ds = new NpgsqlDataSourceBuilder(cs) { Name = "workers" }.Build();
            try { await new MigrationRunner(ds, Logger("Migrations")).MigrateAsync(ct: ct); }
            catch { await ds.DisposeAsync(); throw; }
            _opened.TrySetResult(ds);
            return _dataSource = ds;
        }
        finally { _opening.Release(); }
    }

    /// <summary>The database once this command has opened it (housekeeping services wait here).</summary>
    public Task<NpgsqlDataSource> WhenOpenAsync(CancellationToken ct) => _opened.Task.WaitAsync(ct);

    /// <summary>
    /// <see cref="DatabaseAsync"/> for long-running node processes (run, worker): a database that is
    /// down at start-up is waited for with backoff (logged), instead of failing the process and
    /// having the supervisor count it as a crash. Interactive commands fail fast instead.
    /// </summary>
    public async Task<NpgsqlDataSource> DatabaseWhenUpAsync(CancellationToken ct) =>
        await Workers.Fleet.Resilience.DatabaseRetry.Forever(Logger("Database"), Time).ExecuteAsync(async t => await DatabaseAsync(t), ct);

    // The logger factory belongs to the host, which disposes it.
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
