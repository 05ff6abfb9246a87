using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using Workers.Audio;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Dashboard.Api;
using Workers.Dashboard.Enqueue;
using Workers.Dashboard.Export;
using Workers.Dashboard.Metrics;
using Workers.Dashboard.Pages;
using Workers.Dashboard.Security;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;
using Workers.Postgres.Fleet;

namespace Workers.Dashboard;

/// <summary>What the dashboard is built from: the (migrated) database, queue options (re-run budget,
/// stale-heartbeat threshold), the clock, and its own options.</summary>
public sealed record DashboardHost(NpgsqlDataSource Database, QueueOptions Queue, TimeProvider Time, DashboardOptions Options)
{
    /// <summary>Where the enqueue form may take folders from; empty roots (the default) turn it off.</summary>
    public CorpusOptions Corpus { get; init; } = new();

    /// <summary>Configured pipelines (sections of Pipelines) an enqueue may name; <c>vad</c> is always known.</summary>
    public IReadOnlyList<string> Pipelines { get; init; } = ["vad"];

    /// <summary>Retention of finished history, pruned by the recurring job RetentionPruneJob (and by the workers).</summary>
    public RetentionOptions Retention { get; init; } = new();
}

/// <summary>
/// Builds the dashboard web app: security first, then the Hangfire Dashboard at <c>/</c> with our
/// pages inside it (<see cref="HangfirePages"/>), then the JSON API and /metrics.
/// </summary>
public static class DashboardApp
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <param name="configure">Last say over the builder (tests put a TestServer in).</param>
    public static WebApplication Build(DashboardHost host, IEnumerable<string> urls, Action<WebApplicationBuilder>? configure = null)
    {
        OptionsValidationException.ThrowIfAny([.. host.Options.Validate(), .. host.Corpus.Validate(), .. host.Retention.Validate()]);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ApplicationName = typeof(DashboardApp).Assembly.GetName().Name });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.WebHost.UseUrls([.. urls]);
        var s = builder.Services;
        s.AddSingleton(host);
        s.AddSingleton(host.Options);
        s.AddSingleton(host.Database);
        s.AddSingleton(host.Time);
        s.AddSingleton(new CredentialChecker(host.Options, host.Time));
        s.AddSingleton(new LoginThrottle(host.Options, host.Time));
        s.AddSingleton(new HostNames(host.Options));
        s.AddSingleton(new DashboardReader(host.Database, host.Time));
        s.AddSingleton(new HistoryReader(host.Database, host.Time));
        s.AddSingleton(new StageReader(host.Database, host.Time, host.Queue));
        s.AddSingleton(new CorpusAdmin(host.Database, host.Time));
        s.AddSingleton(new CorpusStatusReader(host.Database));
        s.AddSingleton(new QueueAdmin(host.Database, host.Time));
        s.AddSingleton(new AuditLog(host.Time));
        s.AddSingleton(new WorkerRegistry(host.Database, host.Time));
        s.AddSingleton<IDurationProbe>(new AudioDurationProbe(host.Corpus.Limits));
        s.AddSingleton<DashboardEnqueue>();
        s.AddSingleton<Workers.Dashboard.Export.ICorpusExport>(new Workers.Dashboard.Export.LibraryCorpusExport(host.Database));
        HangfireSetup.AddServices(s, host);
        // Keys in memory: tokens die with the process (a reload fetches new ones), and nothing is
        // written to disk. Several dashboard instances behind one balancer would need a shared key ring.
        s.AddDataProtection().UseEphemeralDataProtectionProvider();
        s.AddAntiforgery(o =>
        {
            o.HeaderName = "X-CSRF-TOKEN";
            o.Cookie.Name = "workers_csrf";
        });
        s.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = Json.PropertyNamingPolicy;
            o.SerializerOptions.DictionaryKeyPolicy = null;
            o.SerializerOptions.Encoder = Json.Encoder;
        });
        configure?.Invoke(builder);

        var app = builder.Build();
        app.Use(async (ctx, next) =>
        {
            ctx.Response.Headers.XContentTypeOptions = "nosniff";
            ctx.Response.Headers["Referrer-Policy"] = "same-origin";
            // Hangfire's pages load their scripts and styles from the dashboard itself; its bootstrap theme uses data: images.
            ctx.Response.Headers.ContentSecurityPolicy = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";
            await next(ctx);
        });
        // In front of every route, ours and any mapped later (Hangfire's /hangfire included): allowed
        // hosts, NUL in path or query, cross-site changes (issue 13); then who may do what; then
        // errors a caller can act on, database outages included (503).
        app.UseMiddleware<RequestGuardMiddleware>();
        app.UseMiddleware<DashboardAccessMiddleware>();
        app.UseMiddleware<ApiErrorMiddleware>();
        HangfireSetup.UseDashboard(app);
        ApiEndpoints.Map(app);
        MetricsEndpoint.Map(app);
        HtmlPages.Map(app);
        EnqueueEndpoints.Map(app);
        ExportEndpoints.Map(app);
        app.Lifetime.ApplicationStarted.Register(() => HangfireSetup.AddRecurringJobs(app.Services));
        return app;
    }
}
