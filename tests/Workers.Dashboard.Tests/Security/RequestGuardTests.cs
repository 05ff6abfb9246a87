using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Workers.Dashboard.Security;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Security;

/// <summary>
/// Issue 13, "the loopback dashboard can be driven by any web page": before the fix a request naming
/// Host attacker.example:5391 got an antiforgery token and could pause a queue (200) from loopback.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RequestGuardTests(PostgresFixture pg)
{
    private const string Remote = "203.0.113.7";
    private static readonly (string, string) Admin = ("ada", "correct horse");

    // The host, and siblings a rebinding service hands out: a name that embeds 127.0.0.1, a
    // subdomain of localhost's look-alike, a bare LAN address, a trailing-dot variant.
    public static TheoryData<string> RebindingHosts => new()
    {
        "attacker.example:5391", "127.0.0.1.nip.io:5080", "localhost.attacker.example", "7f000001.c0a80001.rbndr.us", "192.168.1.20:5080", "attacker.example.:5080",
    };

    [Theory]
    [MemberData(nameof(RebindingHosts))]
    public async Task A_foreign_host_gets_no_antiforgery_token_and_changes_nothing(string host)
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(2);

        using var token = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, $"http://{host}/api/antiforgery"));
        Assert.Equal(HttpStatusCode.BadRequest, token.StatusCode);
        Assert.False(token.Headers.Contains("Set-Cookie"));
        var text = await token.Content.ReadAsStringAsync();
        Assert.DoesNotContain("token", text);
        Assert.Contains("Dashboard:AllowedHosts", text);

        // Even with a token fetched the legitimate way, a request naming the foreign host is refused.
        var (cookie, csrf) = await d.AntiforgeryAsync();
        foreach (var path in new[] { "/api/queues/default/pause", "/api/corpora/c/cancel" })
        {
            var m = TestDashboard.Request(HttpMethod.Post, $"http://{host}{path}");
            m.Headers.Add("Origin", $"http://{host}");
            m.Headers.Add("Cookie", cookie);
            m.Headers.Add("X-CSRF-TOKEN", csrf);
            using var r = await d.Client.SendAsync(m);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        }
        using var page = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, $"http://{host}/"));
        Assert.Equal(HttpStatusCode.BadRequest, page.StatusCode);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM paused_queues"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'cancelled'"));
    }

    [Theory]
    [InlineData("localhost:5080")]
    [InlineData("127.0.0.1:5080")]
    [InlineData("[::1]:5080")]
    [InlineData("LOCALHOST")]
    public async Task Loopback_names_are_served(string host)
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, $"http://{host}/api/corpora"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    [Fact]
    public async Task A_configured_name_is_served_to_remote_users_and_other_names_are_not()
    {
        await using var db = await pg.CreateSchemaAsync();
        var options = new DashboardOptions
        {
            AllowedHosts = ["workers.example.org"],
            Users = [new DashboardUser { Name = "ada", Role = DashboardRoles.Admin, PasswordHash = PasswordHash.Create("correct horse", 10_000).ToString() }],
        };
        await using var d = await TestDashboard.StartAsync(db, options);
        using var ok = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "http://workers.example.org/api/corpora", Remote, Admin));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        // A logged-in operator's browser on a page that re-binds: the credentials do not help it.
        using var bad = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "http://attacker.example/api/antiforgery", Remote, Admin));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task Allowed_hosts_that_are_not_bare_names_are_refused_at_start_up()
    {
        var e = Assert.Throws<Workers.Core.Options.OptionsValidationException>(() =>
            DashboardApp.Build(new DashboardHost(null!, TestDashboard.Queue, TimeProvider.System,
                new DashboardOptions { AllowedHosts = ["https://workers.example.org", "workers.example.org:443", "ok.example.org"] }), []));
        Assert.Contains("Dashboard:AllowedHosts:0", e.Message);
        Assert.Contains("Dashboard:AllowedHosts:1", e.Message);
        Assert.DoesNotContain("Dashboard:AllowedHosts:2", e.Message);
    }

    [Theory]
    [InlineData("Origin", "http://attacker.example")]
    [InlineData("Origin", "http://localhost:9999")] // another local service on another port
    [InlineData("Origin", "null")] // sandboxed iframe, data: URL
    [InlineData("Sec-Fetch-Site", "cross-site")]
    [InlineData("Sec-Fetch-Site", "same-site")]
    public async Task A_cross_site_change_is_refused_even_with_a_valid_token(string header, string value)
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var (cookie, csrf) = await d.AntiforgeryAsync();
        var m = TestDashboard.Request(HttpMethod.Post, "http://localhost:5080/api/queues/default/pause");
        m.Headers.Add("Cookie", cookie);
        m.Headers.Add("X-CSRF-TOKEN", csrf);
        m.Headers.TryAddWithoutValidation(header, value);
        using var r = await d.Client.SendAsync(m);
        Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.Contains("Cross-site request refused", await r.Content.ReadAsStringAsync());
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM paused_queues"));

        // The same request from the dashboard's own page goes through.
        var own = TestDashboard.Request(HttpMethod.Post, "http://localhost:5080/api/queues/default/pause");
        own.Headers.Add("Cookie", cookie);
        own.Headers.Add("X-CSRF-TOKEN", csrf);
        own.Headers.Add("Origin", "http://localhost:5080");
        own.Headers.Add("Sec-Fetch-Site", "same-origin");
        using var ok = await d.Client.SendAsync(own);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Theory]
    [InlineData("/api/shards?file=a%00b")] // the example: 500 and a stack trace per request
    [InlineData("/shards?corpus=%00")]
    [InlineData("/api/shards?worker=w%00")]
    [InlineData("/failures?x%00=1")]
    public async Task Nul_in_a_path_or_query_is_400_without_a_stack_trace(string url)
    {
        await using var db = await pg.CreateSchemaAsync();
        var logs = new CapturingLoggerProvider();
        await using var d = await TestDashboard.StartAsync(db, services: s => s.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(logs));
        using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, url));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("NUL", await r.Content.ReadAsStringAsync());
        Assert.DoesNotContain(logs.Lines, l => l.Contains("   at ", StringComparison.Ordinal) || l.StartsWith("Error", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Nul_in_a_posted_json_body_is_400_without_a_stack_trace()
    {
        await using var db = await pg.CreateSchemaAsync();
        var logs = new CapturingLoggerProvider();
        await using var d = await TestDashboard.StartAsync(db, services: s => s.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(logs));
        await d.SeedCorpusAsync(1);
        using var r = await d.PostJsonAsync("/api/shards/rerun", new { corpus = "c", file = "a\0b" });
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("NUL", await r.Content.ReadAsStringAsync());
        Assert.DoesNotContain(logs.Lines, l => l.Contains("   at ", StringComparison.Ordinal) || l.StartsWith("Error", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Over_real_kestrel_a_rebinding_host_and_nul_are_refused_and_loopback_is_served()
    {
        await using var db = await pg.CreateSchemaAsync();
        var logs = new CapturingLoggerProvider();
        await using var app = DashboardApp.Build(new DashboardHost(db.DataSource, TestDashboard.Queue, TimeProvider.System, new DashboardOptions()),
            ["http://127.0.0.1:0"], b => b.Services.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(logs));
        await app.StartAsync();
        try
        {
            var root = app.Urls.Single();
            using var http = new HttpClient();
            using var ok = await http.GetAsync(root + "/api/corpora");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

            var rebound = new HttpRequestMessage(HttpMethod.Get, root + "/api/antiforgery");
            rebound.Headers.Host = "attacker.example:5391";
            using var token = await http.SendAsync(rebound);
            Assert.Equal(HttpStatusCode.BadRequest, token.StatusCode);
            Assert.False(token.Headers.Contains("Set-Cookie"));

            foreach (var url in new[] { "/api/shards?file=a%00b", "/api/corpora/a%00b" })
            {
                using var r = await http.GetAsync(root + url);
                Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            }
            Assert.DoesNotContain(logs.Lines, l => l.Contains("   at ", StringComparison.Ordinal) || l.StartsWith("Error", StringComparison.Ordinal));
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Theory]
    [InlineData("/\t/evil.example/x", "/")] // the example: browsers drop the tab
    [InlineData("/\n/evil.example/x", "/")]
    [InlineData("/\\evil.example", "/")] // browsers read '\' as '/'
    [InlineData("//evil.example", "/")]
    [InlineData("https://evil.example/", "/")]
    [InlineData("/ /evil.example", "/")]
    [InlineData("/shards?corpus=caf%C3%A9", "/shards?corpus=caf%C3%A9")]
    [InlineData("/\u0430pi", "/")] // non-ASCII: not one of our links, and not a valid Location header
    public void Return_targets_are_limited_to_our_own_relative_paths(string given, string kept) =>
        Assert.Equal(kept, LocalReturnPath.Parse(given));

    [Fact]
    public async Task A_form_post_with_a_foreign_return_target_comes_back_to_the_overview()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        using var r = await d.PostFormAsync("/api/queues/default/pause", [KeyValuePair.Create("return", "/\t/evil.example/x")]);
        Assert.Equal(HttpStatusCode.SeeOther, r.StatusCode);
        Assert.Equal("/", r.Headers.Location!.OriginalString);
    }
}
