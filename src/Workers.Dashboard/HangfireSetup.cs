using Hangfire;
using Hangfire.AspNetCore;
using Hangfire.Dashboard;
using Hangfire.PostgreSql;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Workers.Postgres.Queue;
using Workers.Dashboard.Enqueue;
using Workers.Dashboard.Export;
using Workers.Dashboard.Maintenance;
using Workers.Dashboard.Pages;
using Workers.Dashboard.Security;
using HangfireDashboardOptions = Hangfire.DashboardOptions;

namespace Workers.Dashboard;

/// <summary>
/// Hangfire in the dashboard process: storage (Hangfire.PostgreSql in schema
/// <see cref="DashboardOptions.HangfireSchema"/> of our database, created and upgraded by
/// Hangfire.PostgreSql itself when <c>workers serve</c> starts), one Hangfire server with
/// <see cref="DashboardOptions.JobWorkers"/> workers on <see cref="Queues"/>, and the Hangfire
/// Dashboard at <c>/</c> behind the same users and roles as the rest of the dashboard. Shards never
/// become Hangfire jobs: they stay in our fenced queue (ARCHITECTURE.md says why).
/// </summary>
public static class HangfireSetup
{
    /// <summary>Control-plane work started from the dashboard (enqueue, export).</summary>
    public const string ControlQueue = "control";

    /// <summary>Periodic maintenance (recurring jobs): not latency-critical.</summary>
    public const string MaintenanceQueue = "maintenance";

    /// <summary>The queues the dashboard's Hangfire server takes jobs from, in the order Hangfire serves them (alphabetical).</summary>
    public static readonly string[] Queues = [ControlQueue, MaintenanceQueue];

    /// <summary>How often an idle Hangfire worker looks for a job (Hangfire.PostgreSql's default is 15 s).</summary>
    public static readonly TimeSpan QueuePollInterval = TimeSpan.FromSeconds(1);

    /// <summary>How often a running job's state is checked, so that deleting it cancels its token (Hangfire's default is 5 s).</summary>
    public static readonly TimeSpan CancellationCheckInterval = TimeSpan.FromSeconds(1);

    /// <summary>Hangfire.PostgreSql over our data source; creates or upgrades its schema now (PrepareSchemaIfNecessary).</summary>
    public static PostgreSqlStorage CreateStorage(NpgsqlDataSource db, string schema) =>
        new(new DataSourceConnectionFactory(db), new PostgreSqlStorageOptions
        {
            SchemaName = schema,
            PrepareSchemaIfNecessary = true,
            QueuePollInterval = QueuePollInterval,
            // A long enqueue (ffprobe over 100,000 files) keeps its fetch alive while its server
            // lives, instead of being handed to a second worker after InvisibilityTimeout.
            UseSlidingInvisibilityTimeout = true,
        });

    /// <summary>Registers storage, client, activator and (with JobWorkers &gt; 0) the server. Call before anything resolves Hangfire services.</summary>
    internal static void AddServices(IServiceCollection s, DashboardHost host)
    {
        var storage = CreateStorage(host.Database, host.Options.HangfireSchema);
        // Ours first: AddHangfire only TryAdds these, and its own defaults are process-wide statics
        // (JobStorage.Current), which two dashboards in one process (tests) must not share.
        s.AddSingleton<JobStorage>(storage);
        s.AddSingleton<JobActivator>(sp => new AspNetCoreJobActivator(sp.GetRequiredService<IServiceScopeFactory>()));
        s.AddHangfire(c => c
            .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
            .UseSimpleAssemblyNameTypeSerializer()
            .UseRecommendedSerializerSettings());
        s.AddSingleton<EnqueueJobs>();
        s.AddTransient<EnqueueJob>();
        s.AddSingleton<ExportJobs>();
        s.AddTransient<ExportJob>();
        // One per process: it remembers when this process last asked whether a prune is due.
        s.AddSingleton(new QueueMaintenance(host.Database, host.Retention, host.Time));
        s.AddTransient<RetentionPruneJob>();
        if (host.Options.JobWorkers > 0)
            s.AddHangfireServer((_, o) =>
            {
                o.ServerName = $"workers-serve:{Environment.MachineName}:{Environment.ProcessId}";
                o.WorkerCount = host.Options.JobWorkers;
                o.Queues = Queues;
                o.CancellationCheckInterval = CancellationCheckInterval;
            }, storage);
        HangfirePages.Register();
    }

    /// <summary>
    /// Hangfire's dashboard at the root, after our access middleware: same users, readonly role via
    /// IsReadOnlyFunc. Its middleware sits in the main pipeline (not a UseHangfireDashboard branch),
    /// so a path it does not serve (/api, /metrics) goes on to our endpoints.
    /// </summary>
    internal static void UseDashboard(WebApplication app)
    {
        var services = app.Services;
        var options = new HangfireDashboardOptions
        {
            DashboardTitle = "Workers",
            AppPath = null,
            DisplayStorageConnectionString = false,
            Authorization = [new DashboardUserAuthorization()],
            IsReadOnlyFunc = c => !c.GetHttpContext().User.IsInRole(DashboardRoles.Admin),
            TimeZoneResolver = services.GetRequiredService<ITimeZoneResolver>(),
        };
        services.GetRequiredService<IGlobalConfiguration>();
        app.UseMiddleware<AspNetCoreDashboardMiddleware>(services.GetRequiredService<JobStorage>(), options, services.GetRequiredService<RouteCollection>());
    }

    /// <summary>The recurring jobs, (re)defined at every start so that a changed schedule takes effect.</summary>
    internal static void AddRecurringJobs(IServiceProvider services) =>
        services.GetRequiredService<IRecurringJobManager>().AddOrUpdate<RetentionPruneJob>(
            RetentionPruneJob.RecurringId, j => j.RunAsync(CancellationToken.None), RetentionPruneJob.Cron, new RecurringJobOptions());

    /// <summary>Lets in whoever <see cref="DashboardAccessMiddleware"/> let in (it runs first and refuses everyone else).</summary>
    private sealed class DashboardUserAuthorization : IDashboardAuthorizationFilter
    {
        public bool Authorize(DashboardContext context) =>
            context.GetHttpContext().User.Identity is { IsAuthenticated: true, AuthenticationType: DashboardAccessMiddleware.AuthenticationType };
    }

    /// <summary>Hangfire.PostgreSql takes connections from our pooled data source (same database, same credentials).</summary>
    private sealed class DataSourceConnectionFactory(NpgsqlDataSource db) : IConnectionFactory
    {
        public NpgsqlConnection GetOrCreateConnection() => db.CreateConnection();
    }
}
