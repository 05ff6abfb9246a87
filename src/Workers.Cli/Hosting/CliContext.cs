using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;
using Workers.Core.Options;
using Workers.Postgres.Cluster;
using Workers.Postgres.Migrations;

namespace Workers.Cli.Hosting;

/// <summary>
/// What every command shares: configuration (appsettings.json beside the binary, then in the
/// working directory, then environment variables such as <c>ConnectionStrings__Workers</c>),
/// logging to stderr, validated options, and the database: the configured server, or the
/// embedded local cluster when none is configured.
/// </summary>
public sealed class CliContext : IAsyncDisposable
{
    private NpgsqlDataSource? _dataSource;

    public CliContext()
    {
        Configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true)
            .AddJsonFile(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json"), optional: true)
            .AddEnvironmentVariables()
            .Build();
        LoggerFactory = Microsoft.Extensions.Logging.LoggerFactory.Create(b => b
            .AddConfiguration(Configuration.GetSection("Logging"))
            // Logs go to stderr so stdout stays clean for --json and export output.
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
            .AddFilter("Npgsql", LogLevel.Warning));
        Queue = Bind<QueueOptions>(QueueOptions.Section);
        OptionsValidationException.ThrowIfAny(Queue.Validate());
    }

    public IConfiguration Configuration { get; }
    public ILoggerFactory LoggerFactory { get; }
    public QueueOptions Queue { get; }
    public TimeProvider Time { get; } = TimeProvider.System;

    public ILogger Logger(string category) => LoggerFactory.CreateLogger(category);

    /// <summary>The configured pipelines (the sections of Pipelines), which `workers enqueue` and the dashboard's form accept.</summary>
    public IReadOnlyList<string> Pipelines => [.. Configuration.GetSection("Pipelines").GetChildren().Select(c => c.Key)];

    /// <summary>Fleet:NodeName, or the machine name: what the supervisor, its workers and the GPU sampler call this node.</summary>
    public string NodeName => Configuration["Fleet:NodeName"] is { Length: > 0 } n ? n : Environment.MachineName;

    public T Bind<T>(string section) where T : new()
    {
        var o = new T();
        Configuration.GetSection(section).Bind(o);
        return o;
    }

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
        if (_dataSource is not null) return _dataSource;
        var cs = ConfiguredConnectionString ?? await LocalCluster().StartAsync(ct);
        var ds = new NpgsqlDataSourceBuilder(cs) { Name = "workers" }.Build();
        await new MigrationRunner(ds, Logger("Migrations")).MigrateAsync(ct: ct);
        return _dataSource = ds;
    }

    /// <summary>
    /// <see cref="DatabaseAsync"/> for long-running node processes (run, worker): a database that is
    /// down at start-up is waited for with backoff (logged), instead of failing the process and
    /// having the supervisor count it as a crash. Interactive commands fail fast instead.
    /// </summary>
    public async Task<NpgsqlDataSource> DatabaseWhenUpAsync(CancellationToken ct) =>
        await Workers.Fleet.Resilience.DatabaseRetry.Forever(Logger("Database"), Time).ExecuteAsync(async t => await DatabaseAsync(t), ct);

    public async ValueTask DisposeAsync()
    {
        if (_dataSource is not null) await _dataSource.DisposeAsync();
        LoggerFactory.Dispose();
    }
}
