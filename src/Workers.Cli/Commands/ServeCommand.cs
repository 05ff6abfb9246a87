using Npgsql;
using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Workers.Cli.Hosting;
using Workers.Core.Options;
using Workers.Dashboard;
using Workers.Dashboard.Export;
using Workers.Dashboard.Security;
using Workers.Fleet.Housekeeping;

namespace Workers.Cli.Commands;

/// <summary>`workers serve`: the dashboard (README.md, "Dashboard"), or with --hash-password a PasswordHash for Dashboard:Users.</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls")
        {
            Description = "Where to listen, ';'-separated. Requests from other machines are refused unless Dashboard:Users are configured.",
            DefaultValueFactory = _ => "http://127.0.0.1:5080",
        };
        var hashPassword = new Option<bool>("--hash-password")
        {
            Description = "Read a password from stdin and print its PBKDF2 hash for Dashboard:Users:N:PasswordHash; serves nothing.",
        };
        var cmd = new Command("serve", "Serve the dashboard (the Hangfire Dashboard with our pages: corpora, enqueue, shards, failures and re-runs, fleet, audit), its Hangfire server, JSON API, /metrics.") { urls, hashPassword };
        cmd.SetAction((pr, ct) => pr.GetValue(hashPassword) ? Task.FromResult(HashPasswordOrBadInput()) : CommandRunner.RunAsync<Handler>((h, ct) => h.RunAsync(pr.GetValue(urls), ct), ct, services =>
        {
            AddDashboard(services);
            services.AddSettings<CorpusOptions>(CorpusOptions.Section, o => o.Validate());
            services.AddDashboardHousekeeping(); // the lease rescuer: expired leases requeued with no worker running
        }));
        return cmd;
    }

    /// <summary>What <see cref="DashboardFactory"/> needs besides the host's services (Dashboard, Retention; checked on start) and itself.
    /// The caller registers Corpus with the validation it wants.</summary>
    public static void AddDashboard(IServiceCollection services)
    {
        services.AddSettings<DashboardOptions>(DashboardOptions.Section, o => o.Validate());
        services.AddSettings<RetentionOptions>(RetentionOptions.Section, o => o.Validate());
        services.TryAddTransient<DashboardFactory>();
    }

    /// <summary>`workers serve`: the dashboard until the first signal.</summary>
    public sealed class Handler(WorkersDatabase database, DashboardFactory dashboard, IOptions<CorpusOptions> corpusOptions, ILogger<DashboardHost> log)
    {
        public async Task<int> RunAsync(string? urls, CancellationToken ct)
        {
            var options = dashboard.Options;
            var corpus = corpusOptions.Value;
            var listen = (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (listen.Length == 0) throw new ArgumentException("--urls is empty; e.g. --urls http://127.0.0.1:5080");
            var db = await database.OpenAsync(ct);
            await using var app = DashboardApp.Build(dashboard.Host(db, corpus), listen);
            await app.StartAsync(ct);
            log.LogInformation("dashboard listening on {Urls}; {Access}", string.Join(", ", app.Urls),
                options.Users.Count == 0
                    ? "loopback requests only (no Dashboard:Users configured; others get 403)"
                    : $"{options.Users.Count} configured user(s) may sign in from other machines (HTTP Basic){(options.LocalRequiresCredentials ? ", loopback too" : "; loopback needs no credentials")}");
            log.LogInformation("hangfire: storage schema {Schema}; {Server}", options.HangfireSchema, options.JobWorkers > 0
                ? $"a server with {options.JobWorkers} worker(s) on queue(s) {string.Join(", ", HangfireSetup.Queues)}"
                : "no server in this process (Dashboard:JobWorkers = 0): dashboard enqueue jobs wait until one runs");
            log.LogInformation("host names answered: {Hosts}", options.AllowedHosts.Count == 0
                ? "localhost and loopback addresses only (remote users need the name they use in Dashboard:AllowedHosts)"
                : "localhost, loopback addresses and " + string.Join(", ", options.AllowedHosts));
            log.LogInformation("enqueue form: {Enqueue}", corpus.Enabled
                ? "folders under " + string.Join(", ", corpus.AllowedRoots)
                : "off (no Corpus:AllowedRoots; e.g. Corpus__AllowedRoots__0=/data/corpora)");
            try { await Task.Delay(Timeout.Infinite, ct); }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
            await app.StopAsync(CancellationToken.None);
            return ExitCodes.Ok;
        }
    }

    /// <summary>What the dashboard is built from, as configured (`serve`, and `demo` with its own corpus folder).</summary>
    public sealed class DashboardFactory(IOptions<QueueOptions> queue, TimeProvider time, IOptions<DashboardOptions> options,
        IOptions<RetentionOptions> retention, IOptions<PipelinesOptions> pipelines)
    {
        public DashboardOptions Options => options.Value;

        public DashboardHost Host(NpgsqlDataSource db, CorpusOptions corpus) =>
            new(db, queue.Value, time, options.Value)
            {
                Corpus = corpus,
                Pipelines = pipelines.Value.Names,
                Retention = retention.Value,
            };
    }

    /// <summary>--hash-password needs no configuration or database: it runs outside the host.</summary>
    private static int HashPasswordOrBadInput()
    {
        try { return HashPassword(); }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return ExitCodes.BadInput;
        }
    }

    private static int HashPassword()
    {
        string? password;
        if (Console.IsInputRedirected) password = Console.In.ReadLine();
        else
        {
            Console.Error.Write("password: ");
            var sb = new System.Text.StringBuilder();
            for (var k = Console.ReadKey(intercept: true); k.Key != ConsoleKey.Enter; k = Console.ReadKey(intercept: true))
                if (k.Key == ConsoleKey.Backspace) { if (sb.Length > 0) sb.Length--; }
                else sb.Append(k.KeyChar);
            Console.Error.WriteLine();
            password = sb.ToString();
        }
        if (string.IsNullOrEmpty(password))
            throw new ArgumentException("No password given: type one, or pipe it in (printf %s \"$PASSWORD\" | workers serve --hash-password).");
        Console.WriteLine(PasswordHash.Create(password));
        return ExitCodes.Ok;
    }
}
