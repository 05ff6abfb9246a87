using System.Net;
using Workers.Dashboard.Security;
using Workers.Testing;

using static Workers.Dashboard.Tests.Security.TestUsers;

namespace Workers.Dashboard.Tests.Security;

[Collection(PostgresCollection.Name)]
public sealed class AccessTests(PostgresFixture pg)
{
    [Fact]
    public async Task A_remote_request_is_refused_with_403_when_no_users_are_configured_and_a_local_one_is_served()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);

        using var remote = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/corpora", Remote));
        Assert.Equal(HttpStatusCode.Forbidden, remote.StatusCode);
        var text = await remote.Content.ReadAsStringAsync();
        Assert.Contains("loopback", text);
        Assert.Contains(Remote, text);
        Assert.Contains("Dashboard:Users", text);

        using var local = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/corpora"));
        Assert.Equal(HttpStatusCode.OK, local.StatusCode);
        using var metrics = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/metrics", Remote));
        Assert.Equal(HttpStatusCode.Forbidden, metrics.StatusCode);
    }

    [Fact]
    public async Task A_post_without_an_antiforgery_token_is_refused_and_changes_nothing()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);

        using var bare = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Post, "/api/queues/default/pause"));
        Assert.Equal(HttpStatusCode.BadRequest, bare.StatusCode);
        Assert.Contains("Antiforgery", await bare.Content.ReadAsStringAsync());

        // The cookie alone, or a header token without its cookie, is not enough either.
        var (cookie, token) = await d.AntiforgeryAsync();
        var cookieOnly = TestDashboard.Request(HttpMethod.Post, "/api/queues/default/pause");
        cookieOnly.Headers.Add("Cookie", cookie);
        Assert.Equal(HttpStatusCode.BadRequest, (await d.Client.SendAsync(cookieOnly)).StatusCode);
        var headerOnly = TestDashboard.Request(HttpMethod.Post, "/api/queues/default/pause");
        headerOnly.Headers.Add("X-CSRF-TOKEN", token);
        Assert.Equal(HttpStatusCode.BadRequest, (await d.Client.SendAsync(headerOnly)).StatusCode);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM paused_queues"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log"));

        using var ok = await d.PostAsync("/api/queues/default/pause");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM paused_queues"));
    }

    [Fact]
    public async Task A_readonly_user_can_read_but_cannot_act_and_an_admin_can()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, WithUsers());
        await d.SeedCorpusAsync(3);

        using var read = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/corpora", Remote, Reader));
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);

        using var act = await d.PostAsync("/api/corpora/c/cancel", Remote, Reader);
        Assert.Equal(HttpStatusCode.Forbidden, act.StatusCode);
        Assert.Contains("readonly", await act.Content.ReadAsStringAsync());
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'cancelled'"));

        using var admin = await d.PostAsync("/api/corpora/c/cancel", Remote, Admin);
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'cancelled'"));
        Assert.Equal("ada", await db.ScalarAsync<string>("SELECT actor FROM audit_log WHERE action = 'corpus.cancel'"));
    }

    [Fact]
    public async Task A_wrong_password_or_unknown_user_is_refused_with_a_challenge()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, WithUsers());

        foreach (var creds in new[] { ("ada", "wrong"), ("nobody", "correct horse"), ("ada", "") })
        {
            using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/corpora", Remote, creds));
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Contains("Basic", r.Headers.WwwAuthenticate.ToString());
        }
        // Bad credentials are refused from loopback too: they are never ignored in favour of the local user.
        using var local = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/corpora", null, ("ada", "wrong")));
        Assert.Equal(HttpStatusCode.Unauthorized, local.StatusCode);
        using var none = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/corpora", Remote));
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        using var good = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/corpora", Remote, Admin));
        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
    }

    [Fact]
    public async Task An_antiforgery_token_fetched_by_one_user_does_not_work_for_another()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, WithUsers());
        var (cookie, token) = await d.AntiforgeryAsync(Remote, Reader);
        var m = TestDashboard.Request(HttpMethod.Post, "/api/queues/default/pause", Remote, Admin);
        m.Headers.Add("Cookie", cookie);
        m.Headers.Add("X-CSRF-TOKEN", token);
        using var r = await d.Client.SendAsync(m);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
    }
}
