using System.Net;
using Hangfire;
using Hangfire.Storage;
using Microsoft.Extensions.DependencyInjection;
using Workers.Dashboard.Security;
using Workers.Testing;

using static Workers.Dashboard.Tests.Security.TestUsers;

namespace Workers.Dashboard.Tests.Security;

/// <summary>Issue 12: Hangfire's pages and buttons sit behind the same users, roles and antiforgery as ours.</summary>
[Collection(PostgresCollection.Name)]
public sealed class HangfireAccessTests(PostgresFixture pg)
{
    [Theory]
    [InlineData("/")]
    [InlineData("/jobs/enqueued")]
    [InlineData("/recurring")]
    [InlineData("/corpora")]
    public async Task Hangfires_pages_and_ours_refuse_an_unauthenticated_remote_request(string url)
    {
        await using var db = await pg.CreateSchemaAsync();
        await using (var d = await TestDashboard.StartAsync(db))
        {
            using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, url, Remote));
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
            Assert.Contains("loopback", await r.Content.ReadAsStringAsync());
        }
        await using (var d = await TestDashboard.StartAsync(db, WithUsers()))
        {
            using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, url, Remote));
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            using var ok = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, url, Remote, Reader));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
    }

    [Fact]
    public async Task A_readonly_user_sees_hangfires_pages_without_buttons_and_cannot_post_its_commands()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, WithUsers());
        // A recurring job gives the Recurring page its "Trigger now" and "Delete" buttons.
        var recurring = d.Services.GetRequiredService<IRecurringJobManager>();
        recurring.AddOrUpdate("probe-test", () => Console.WriteLine("x"), Cron.Daily());

        async Task<string> Page((string, string) who)
        {
            using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/recurring", Remote, who));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            return await r.Content.ReadAsStringAsync();
        }
        Assert.Contains("data-url=\"/recurring/trigger\"", await Page(Admin));
        // IsReadOnlyFunc: Hangfire renders no action buttons for the readonly role.
        Assert.DoesNotContain("data-url=\"/recurring/trigger\"", await Page(Reader));

        using (var r = await d.PostFormAsync("/recurring/trigger", [new("jobs[]", "probe-test")], Remote, Reader))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
            Assert.Contains("readonly", await r.Content.ReadAsStringAsync());
        }
        // Hangfire polls its counters with POST /stats: the readonly role may, it changes nothing.
        using (var r = await d.PostFormAsync("/stats", [new("metrics[]", "enqueued:count")], Remote, Reader))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        using (var r = await d.PostFormAsync("/recurring/trigger", [new("jobs[]", "probe-test")], Remote, Admin))
            Assert.True(r.IsSuccessStatusCode, $"{(int)r.StatusCode}");
    }

    [Fact]
    public async Task A_post_to_hangfires_commands_without_an_antiforgery_token_is_refused()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var recurring = d.Services.GetRequiredService<IRecurringJobManager>();
        recurring.AddOrUpdate("probe-test", () => Console.WriteLine("x"), Cron.Daily());

        var bare = TestDashboard.Request(HttpMethod.Post, "/recurring/remove");
        bare.Content = new FormUrlEncodedContent([new("jobs[]", "probe-test")]);
        using (var r = await d.Client.SendAsync(bare)) Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        using (var c = d.Services.GetRequiredService<JobStorage>().GetConnection())
            Assert.Contains(c.GetRecurringJobs(), j => j.Id == "probe-test");
        using (var r = await d.PostFormAsync("/recurring/remove", [new("jobs[]", "probe-test")]))
            Assert.True(r.IsSuccessStatusCode, $"{(int)r.StatusCode}");
        using (var c = d.Services.GetRequiredService<JobStorage>().GetConnection())
            Assert.DoesNotContain(c.GetRecurringJobs(), j => j.Id == "probe-test");
    }

    [Fact]
    public void A_bad_hangfire_schema_or_worker_count_stops_the_dashboard_with_what_to_fix()
    {
        var problems = new DashboardOptions { HangfireSchema = "hang fire; drop", JobWorkers = -1 }.Validate();
        Assert.Contains(problems, p => p.Contains("Dashboard:HangfireSchema 'hang fire; drop'"));
        Assert.Contains(problems, p => p.Contains("Dashboard:JobWorkers is -1"));
        Assert.Empty(new DashboardOptions().Validate());
    }

    [Fact]
    public async Task Hangfires_home_shows_our_shard_metrics_and_every_response_carries_the_csp()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await d.SeedCorpusAsync(3);
        using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/"));
        var html = await r.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Contains("Queued shards", html);
        Assert.Contains("Dead shards", html);
        Assert.Contains("Audio hours per minute", html);
        Assert.Contains("default-src 'self'", r.Headers.GetValues("Content-Security-Policy").Single());
        // No inline script anywhere in Hangfire's layout (the CSP would block it).
        Assert.DoesNotMatch("<script>(?!</script>)", html);
    }
}
