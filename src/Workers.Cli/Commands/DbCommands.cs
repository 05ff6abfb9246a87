using System.CommandLine;
using Workers.Cli.Hosting;

namespace Workers.Cli.Commands;

public static class DbCommands
{
    public static Command Create()
    {
        var db = new Command("db", "The private local PostgreSQL cluster used when no ConnectionStrings:Workers is configured.");

        var start = new Command("start", "Create (first time) and start the local cluster; print its connection string's host and port.");
        start.SetAction((_, ct) => CommandRunner.RunAsync(async (ctx, ct) =>
        {
            if (ctx.ConfiguredConnectionString is not null)
            {
                Console.Error.WriteLine("ConnectionStrings:Workers is configured, so the local cluster is not used; nothing started.");
                return ExitCodes.Ok;
            }
            var cluster = ctx.LocalCluster();
            await cluster.StartAsync(ct);
            var s = await cluster.StatusAsync(ct);
            Console.WriteLine($"running  127.0.0.1:{s.Port}  data {s.DataDir}");
            return ExitCodes.Ok;
        }, ct));

        var stop = new Command("stop", "Stop the local cluster (its data is kept).");
        stop.SetAction((_, ct) => CommandRunner.RunAsync(async (ctx, ct) =>
        {
            await ctx.LocalCluster().StopAsync(ct);
            Console.WriteLine("stopped");
            return ExitCodes.Ok;
        }, ct));

        var status = new Command("status", "Say whether the local cluster exists and runs, and where.");
        status.SetAction((_, ct) => CommandRunner.RunAsync(async (ctx, ct) =>
        {
            if (ctx.ConfiguredConnectionString is not null)
                Console.WriteLine("ConnectionStrings:Workers is configured: the local cluster is not used.");
            var s = await ctx.LocalCluster().StatusAsync(ct);
            Console.WriteLine(!s.Exists ? $"not created  (would live in {s.Root})"
                : s.Running ? $"running  127.0.0.1:{s.Port}  data {s.DataDir}"
                : $"stopped  data {s.DataDir}");
            return s.Running ? ExitCodes.Ok : 3;
        }, ct));

        db.Subcommands.Add(start);
        db.Subcommands.Add(stop);
        db.Subcommands.Add(status);
        return db;
    }

    public static Command Migrate()
    {
        var migrate = new Command("migrate", "Apply migrations/ to the database (every command that needs the database also does this at start-up).");
        migrate.SetAction((_, ct) => CommandRunner.RunAsync(async (ctx, ct) =>
        {
            var cs = ctx.ConfiguredConnectionString ?? await ctx.LocalCluster().StartAsync(ct);
            await using var ds = Npgsql.NpgsqlDataSource.Create(cs);
            var applied = await new Workers.Postgres.Migrations.MigrationRunner(ds, ctx.Logger("Migrations")).MigrateAsync(ct: ct);
            Console.WriteLine(applied.Count == 0 ? "up to date" : $"applied {string.Join(", ", applied.Select(v => v.ToString("000")))}");
            return ExitCodes.Ok;
        }, ct));
        return migrate;
    }
}
