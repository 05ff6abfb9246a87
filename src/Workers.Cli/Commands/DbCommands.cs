using System.CommandLine;
using Microsoft.Extensions.Logging;
using Workers.Cli.Hosting;
using Workers.Postgres.Migrations;

namespace Workers.Cli.Commands;

public static class DbCommands
{
    public static Command Create()
    {
        var db = new Command("db", "The private local PostgreSQL cluster used when no ConnectionStrings:Workers is configured.");

        var start = new Command("start", "Create (first time) and start the local cluster; print its connection string's host and port.");
        start.SetAction((_, ct) => CommandRunner.RunAsync<Handler>((h, ct) => h.StartAsync(ct), ct));

        var stop = new Command("stop", "Stop the local cluster (its data is kept).");
        stop.SetAction((_, ct) => CommandRunner.RunAsync<Handler>((h, ct) => h.StopAsync(ct), ct));

        var status = new Command("status", "Say whether the local cluster exists and runs, and where.");
        status.SetAction((_, ct) => CommandRunner.RunAsync<Handler>((h, ct) => h.StatusAsync(ct), ct));

        db.Subcommands.Add(start);
        db.Subcommands.Add(stop);
        db.Subcommands.Add(status);
        return db;
    }

    public static Command Migrate()
    {
        var migrate = new Command("migrate", "Apply migrations/ to the database (every command that needs the database also does this at start-up).");
        migrate.SetAction((_, ct) => CommandRunner.RunAsync<Handler>((h, ct) => h.MigrateAsync(ct), ct));
        return migrate;
    }

    /// <summary>`db start|stop|status` and `migrate`: the database service (configured server or local cluster).</summary>
    public sealed class Handler(WorkersDatabase database, ILogger<MigrationRunner> migrationsLog)
    {
        public async Task<int> StartAsync(CancellationToken ct)
        {
            if (database.ConfiguredConnectionString is not null)
            {
                Console.Error.WriteLine("ConnectionStrings:Workers is configured, so the local cluster is not used; nothing started.");
                return ExitCodes.Ok;
            }
            var cluster = database.LocalCluster();
            await cluster.StartAsync(ct);
            var s = await cluster.StatusAsync(ct);
            Console.WriteLine($"running  127.0.0.1:{s.Port}  data {s.DataDir}");
            return ExitCodes.Ok;
        }

        public async Task<int> StopAsync(CancellationToken ct)
        {
            await database.LocalCluster().StopAsync(ct);
            Console.WriteLine("stopped");
            return ExitCodes.Ok;
        }

        public async Task<int> StatusAsync(CancellationToken ct)
        {
            if (database.ConfiguredConnectionString is not null)
                Console.WriteLine("ConnectionStrings:Workers is configured: the local cluster is not used.");
            var s = await database.LocalCluster().StatusAsync(ct);
            Console.WriteLine(!s.Exists ? $"not created  (would live in {s.Root})"
                : s.Running ? $"running  127.0.0.1:{s.Port}  data {s.DataDir}"
                : $"stopped  data {s.DataDir}");
            return s.Running ? ExitCodes.Ok : 3;
        }

        /// <summary>Migrates on a data source of its own (not <see cref="WorkersDatabase.OpenAsync"/>, which migrates too), to print what it applied.</summary>
        public async Task<int> MigrateAsync(CancellationToken ct)
        {
            await using var ds = Npgsql.NpgsqlDataSource.Create(await database.ConnectionStringAsync(ct));
            var applied = await new MigrationRunner(ds, migrationsLog).MigrateAsync(ct: ct);
            Console.WriteLine(applied.Count == 0 ? "up to date" : $"applied {string.Join(", ", applied.Select(v => v.ToString("000")))}");
            return ExitCodes.Ok;
        }
    }
}
