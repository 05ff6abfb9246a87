using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Postgres.Corpora;
using Workers.Testing;

namespace Workers.Dashboard.Tests;

/// <summary>
/// The dashboard on an in-process TestServer over a per-test schema. A request's remote address
/// is what its <see cref="RemoteHeader"/> says (127.0.0.1 when absent), set before the dashboard's
/// own middleware sees the request, as Kestrel would from the socket.
/// </summary>
internal sealed class TestDashboard : IAsyncDisposable
{
    public const string RemoteHeader = "X-Test-Remote-Address";
    public static readonly QueueOptions Queue = new() { LeaseSeconds = 60, HeartbeatSeconds = 10, MaxAttempts = 3 };

    private readonly WebApplication _app;

    private TestDashboard(WebApplication app, TestSchema db, FakeTimeProvider time)
    {
        _app = app;
        Db = db;
        Time = time;
        Client = app.GetTestServer().CreateClient();
    }

    public TestSchema Db { get; }
    public FakeTimeProvider Time { get; }
    public HttpClient Client { get; }

    /// <summary>The app's services (its Hangfire JobStorage, for instance).</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>Waits until Hangfire job <paramref name="jobId"/> is in state <paramref name="state"/> (a test's time limit: 60 s); returns its state data.
    /// Polls the storage: Hangfire's server runs the job on its own threads and commits each state to PostgreSQL, and the
    /// committed row is what the test's next request reads (a state filter would fire before that commit).</summary>
    public async Task<IDictionary<string, string>> WaitForJobAsync(string jobId, string state)
    {
        var storage = Services.GetRequiredService<Hangfire.JobStorage>();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        string? last = null;
        while (true)
        {
            using (var c = storage.GetConnection())
                if (c.GetStateData(jobId) is { } data)
                {
                    if (data.Name == state) return data.Data;
                    last = data.Name + " " + string.Join(", ", data.Data.Select(kv => $"{kv.Key}={kv.Value}"));
                }
            try { await Task.Delay(50, limit.Token); } // polls a real server (Hangfire's, over PostgreSQL)
            catch (OperationCanceledException) { Assert.Fail($"job {jobId} did not reach {state} in 60 s; last: {last}"); }
        }
    }

    public static async Task<TestDashboard> StartAsync(TestSchema db, DashboardOptions? options = null, FakeTimeProvider? time = null,
        CorpusOptions? corpus = null, Action<IServiceCollection>? services = null, Npgsql.NpgsqlDataSource? database = null)
    {
        time ??= new FakeTimeProvider();
        options ??= new DashboardOptions();
        // Hangfire's tables in a schema of this test's own, dropped with the dashboard.
        options.HangfireSchema = db.Name + "_hangfire";
        var host = new DashboardHost(database ?? db.DataSource, Queue, time, options) { Corpus = corpus ?? new CorpusOptions() };
        var app = DashboardApp.Build(host, ["http://127.0.0.1:0"], b =>
        {
            b.WebHost.UseTestServer();
            b.Services.AddSingleton<IStartupFilter, RemoteAddressFromHeader>();
            services?.Invoke(b.Services);
        });
        await app.StartAsync();
        return new TestDashboard(app, db, time);
    }

    public static HttpRequestMessage Request(HttpMethod method, string url, string? remote = null, (string User, string Password)? basic = null)
    {
        var m = new HttpRequestMessage(method, url);
        if (remote is not null) m.Headers.Add(RemoteHeader, remote);
        if (basic is { } b)
            m.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(b.User + ":" + b.Password)));
        return m;
    }

    /// <summary>GET /api/antiforgery as this caller: the cookie and the header token a POST must carry.</summary>
    public async Task<(string Cookie, string Token)> AntiforgeryAsync(string? remote = null, (string, string)? basic = null)
    {
        using var r = await Client.SendAsync(Request(HttpMethod.Get, "/api/antiforgery", remote, basic));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var cookie = r.Headers.GetValues("Set-Cookie").Select(c => c.Split(';')[0]).Single(c => c.StartsWith("workers_csrf=", StringComparison.Ordinal));
        var body = await r.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("X-CSRF-TOKEN", body.GetProperty("header_name").GetString());
        return (cookie, body.GetProperty("token").GetString()!);
    }

    /// <summary>A POST with a valid antiforgery cookie and header, fetched as the same caller.</summary>
    public async Task<HttpResponseMessage> PostAsync(string url, string? remote = null, (string, string)? basic = null)
    {
        var (cookie, token) = await AntiforgeryAsync(remote, basic);
        var m = Request(HttpMethod.Post, url, remote, basic);
        m.Headers.Add("Cookie", cookie);
        m.Headers.Add("X-CSRF-TOKEN", token);
        return await Client.SendAsync(m);
    }

    /// <summary>A POST with a JSON body, a valid antiforgery cookie and header.</summary>
    public async Task<HttpResponseMessage> PostJsonAsync(string url, object body, string? remote = null, (string, string)? basic = null)
    {
        var (cookie, token) = await AntiforgeryAsync(remote, basic);
        var m = Request(HttpMethod.Post, url, remote, basic);
        m.Headers.Add("Cookie", cookie);
        m.Headers.Add("X-CSRF-TOKEN", token);
        m.Content = JsonContent.Create(body);
        return await Client.SendAsync(m);
    }

    /// <summary>A form POST as a page sends it: the antiforgery cookie, and the token as the __RequestVerificationToken field.</summary>
    public async Task<HttpResponseMessage> PostFormAsync(string url, IEnumerable<KeyValuePair<string, string>> fields, string? remote = null, (string, string)? basic = null)
    {
        var (cookie, token) = await AntiforgeryAsync(remote, basic);
        var m = Request(HttpMethod.Post, url, remote, basic);
        m.Headers.Add("Cookie", cookie);
        m.Content = new FormUrlEncodedContent([.. fields, KeyValuePair.Create("__RequestVerificationToken", token)]);
        return await Client.SendAsync(m);
    }

    public async Task<JsonElement> GetJsonAsync(string url)
    {
        using var r = await Client.SendAsync(Request(HttpMethod.Get, url));
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"{url}: {(int)r.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>A manifest corpus of <paramref name="shards"/> files of 60 s, one file per shard.</summary>
    public async Task<long> SeedCorpusAsync(int shards, string name = "c", string queue = "default", string pipeline = "vad")
    {
        var files = Enumerable.Range(0, shards).Select(i => new SourceFile($"{name}/f{i:000000}.wav", 60)).ToList();
        var listing = new CorpusListing("manifest", "/corpus/manifest.jsonl", "/corpus", files, []);
        var plan = await EnqueuePlanner.PlanAsync(listing, probe: null, 60);
        return await new CorpusWriter(Db.DataSource, Time).WriteAsync(plan, new EnqueueRequest(name, pipeline, queue, 0, Queue.MaxAttempts));
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await Db.ScalarAsync<int>($"DROP SCHEMA IF EXISTS {Db.Name}_hangfire CASCADE; SELECT 1"); // generated identifier, not input
    }

    private sealed class RemoteAddressFromHeader : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (ctx, n) =>
            {
                ctx.Connection.RemoteIpAddress = IPAddress.Parse(ctx.Request.Headers[RemoteHeader].FirstOrDefault() ?? "127.0.0.1");
                await n(ctx);
            });
            next(app);
        };
    }
}
