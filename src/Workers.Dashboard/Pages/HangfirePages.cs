using System.Globalization;
using System.Text.RegularExpressions;
using Hangfire;
using Hangfire.Dashboard;
using Hangfire.Dashboard.Pages;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Workers.Dashboard.Enqueue;
using Workers.Dashboard.Export;
using Workers.Postgres.Dashboard;

namespace Workers.Dashboard.Pages;

/// <summary>What a page loader made: the title, the body inside Hangfire's layout, the status, or a redirect instead.</summary>
public sealed record PageBody(string Title, string Html, int Status = StatusCodes.Status200OK)
{
    /// <summary>Where a 303 sends the browser (a form that did something); null for a page.</summary>
    public string? Location { get; init; }

    public static PageBody SeeOther(string location) => new("", "", StatusCodes.Status303SeeOther) { Location = location };
}

/// <summary>
/// Our pages inside the Hangfire Dashboard: each is a route in <see cref="DashboardRoutes.Routes"/>
/// served by <see cref="PageDispatcher"/>, and an item in <see cref="NavigationMenu.Items"/>; the
/// shard counts and fleet rate are metrics on Hangfire's home page. Hangfire keeps these in
/// process-wide statics, so they are registered once per process (every dashboard built in it
/// shares them; a loader finds its own services through the request).
/// </summary>
public static class HangfirePages
{
    private static readonly Lock Once = new();
    private static bool _registered;

    /// <summary>The loaders by route (Hangfire matches a route as a whole-path regex, relative to the dashboard's path).</summary>
    internal static readonly (string Route, Func<HttpContext, Match, CancellationToken, Task<PageBody>> Load)[] Routes =
    [
        ("/corpora", OverviewPage.LoadAsync),
        ("/enqueue", EnqueueEndpoints.LoadAsync),
        ("/export", ExportEndpoints.LoadAsync),
        ("/shards", ShardPages.ListAsync),
        ("/shards/(?<id>[0-9]{1,18})", ShardPages.DetailAsync),
        ("/failures", FailuresPage.LoadAsync),
        ("/fleet", FleetPage.LoadAsync),
        ("/audit", AuditPage.LoadAsync),
    ];

    public static void Register()
    {
        lock (Once)
        {
            if (_registered) return;
            _registered = true;
            foreach (var (route, load) in Routes) DashboardRoutes.Routes.Add(route, new PageDispatcher(load));
            foreach (var (href, text) in HtmlPages.NavLinks)
                NavigationMenu.Items.Add(page => new MenuItem(text, page.Url.To(href))
                {
                    Active = page.RequestPath is { } p && (p == href || p.StartsWith(href + "/", StringComparison.Ordinal)),
                });
            foreach (var metric in Metrics) GlobalConfiguration.Configuration.UseDashboardMetric(metric);
        }
    }

    /// <summary>Shard counts by state and the fleet rate, as tiles on Hangfire's home page (one read per request, shared by the tiles).</summary>
    internal static readonly DashboardMetric[] Metrics =
    [
        ShardMetric("queued", "Queued shards"),
        ShardMetric("running", "Running shards"),
        ShardMetric("succeeded", "Succeeded shards"),
        ShardMetric("dead", "Dead shards"),
        new("workers:fleet-rate", "Audio hours per minute", page =>
        {
            var rate = Snapshot(page).RecentAudioSeconds / DashboardReader.RateWindow.TotalSeconds;
            return new Metric((rate * 60 / 3600).ToString("0.000", CultureInfo.InvariantCulture)) { Style = MetricStyle.Info };
        }),
    ];

    private static DashboardMetric ShardMetric(string state, string title) =>
        new($"workers:shards-{state}", title, page =>
        {
            var n = Snapshot(page).ShardsByState.GetValueOrDefault(state);
            return new Metric(n) { Style = n == 0 ? MetricStyle.Default : state == "dead" ? MetricStyle.Danger : state == "succeeded" ? MetricStyle.Success : MetricStyle.Info };
        });

    /// <summary>
    /// The metrics read (DashboardReader.MetricsAsync: one pass over shards by state), once per request.
    /// Hangfire asks for a metric synchronously, so this waits for the read.
    /// </summary>
    private static MetricsSnapshot Snapshot(RazorPage page)
    {
        var http = page.Context.GetHttpContext();
        if (http.Items[typeof(MetricsSnapshot)] is MetricsSnapshot cached) return cached;
        var snapshot = http.RequestServices.GetRequiredService<DashboardReader>().MetricsAsync(http.RequestAborted).GetAwaiter().GetResult();
        http.Items[typeof(MetricsSnapshot)] = snapshot;
        return snapshot;
    }

    /// <summary>
    /// Awaits a page's loader, then renders its body in Hangfire's layout (<see cref="RazorPage.Execute"/>
    /// is synchronous; the loader stays async and testable on its own).
    /// </summary>
    private sealed class PageDispatcher(Func<HttpContext, Match, CancellationToken, Task<PageBody>> load) : IDashboardDispatcher
    {
        public async Task Dispatch(DashboardContext context)
        {
            var http = context.GetHttpContext();
            var body = await load(http, context.UriMatch, http.RequestAborted);
            http.Response.StatusCode = body.Status;
            if (body.Location is { } location)
            {
                http.Response.Headers.Location = location;
                return;
            }
            http.Items[typeof(PageBody)] = body;
            await Renderer.Dispatch(context);
        }
    }

    /// <summary>
    /// Hangfire's own razor-page dispatcher (internal to Hangfire; reached through a private route
    /// collection's AddRazorPage), which binds a page to the request and writes it with its layout.
    /// </summary>
    private static readonly IDashboardDispatcher Renderer = CreateRenderer();

    private static IDashboardDispatcher CreateRenderer()
    {
        var routes = new RouteCollection();
        routes.AddRazorPage("/", _ => new HostedPage());
        return routes.FindDispatcher("/")?.Item1 ?? throw new InvalidOperationException("Hangfire's AddRazorPage registered no dispatcher.");
    }

    /// <summary>Renders the <see cref="PageBody"/> its dispatcher left in the request's items.</summary>
    private sealed class HostedPage : RazorPage
    {
        public override void Execute()
        {
            var body = (PageBody)Context.GetHttpContext().Items[typeof(PageBody)]!;
            Layout = new LayoutPage(body.Title);
            WriteLiteral("<div class=\"row\"><div class=\"col-md-12\">");
            WriteLiteral(body.Html);
            WriteLiteral("</div></div>");
        }
    }
}
