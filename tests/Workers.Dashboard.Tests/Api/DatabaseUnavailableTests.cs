using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using Workers.Dashboard.Api;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Api;

/// <summary>
/// Issue 13: during a database outage every page answered an empty 500. The dashboard here reaches a
/// real PostgreSQL through a TCP relay the test cuts and restores, as a network outage would.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class DatabaseUnavailableTests(PostgresFixture pg)
{
    [Fact]
    public async Task An_outage_is_answered_503_with_retry_after_on_pages_and_api_and_service_resumes_after()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var relay = Relay.Start(new NpgsqlConnectionStringBuilder(db.ConnectionString));
        await using var viaRelay = NpgsqlDataSource.Create(relay.ConnectionString);
        var logs = new CapturingLoggerProvider();
        await using var d = await TestDashboard.StartAsync(db, services: s => s.AddSingleton<ILoggerProvider>(logs), database: viaRelay);
        await d.SeedCorpusAsync(2);
        Assert.Equal(2, (await d.GetJsonAsync("/api/corpora")).GetProperty("corpora")[0].GetProperty("files").GetInt32());

        relay.Cut();
        using var api = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/api/corpora"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, api.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(ApiErrorMiddleware.RetryAfterSeconds), api.Headers.RetryAfter!.Delta);
        Assert.Contains("database is unavailable", await api.Content.ReadAsStringAsync());

        foreach (var page in new[] { "/", "/shards", "/failures", "/fleet", "/audit" })
        {
            using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, page));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
            Assert.NotNull(r.Headers.RetryAfter);
            Assert.Equal("text/html", r.Content.Headers.ContentType!.MediaType);
            var html = await r.Content.ReadAsStringAsync();
            Assert.Contains("<h1>Database unavailable</h1>", html);
            Assert.Contains("retry in", html);
        }

        using var act = await d.PostAsync("/api/queues/default/pause");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, act.StatusCode);

        // One warning line per request, no stack trace, no error.
        Assert.Contains(logs.Lines, l => l.StartsWith("Warning", StringComparison.Ordinal) && l.Contains("database unavailable", StringComparison.Ordinal));
        // The request path is what a user (or a readonly flooder) drives; Hangfire's own background server in
        // the same process reports its failed lock during the outage with a stack trace of its own, which is
        // its business and not a line per request, so its categories are left out of this check.
        Assert.DoesNotContain(logs.Lines, l => !l.Contains(" Hangfire.", StringComparison.Ordinal)
            && (l.Contains("   at ", StringComparison.Ordinal) || l.StartsWith("Error", StringComparison.Ordinal)));

        relay.Restore();
        Assert.Equal(2, (await d.GetJsonAsync("/api/corpora")).GetProperty("corpora")[0].GetProperty("files").GetInt32());
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM paused_queues"));
    }

    /// <summary>A TCP relay to PostgreSQL on a fixed local port; <see cref="Cut"/> drops every connection and refuses new ones.</summary>
    private sealed class Relay : IAsyncDisposable
    {
        private readonly string _targetHost;
        private readonly int _targetPort;
        private readonly int _port;
        private readonly List<TcpClient> _open = [];
        private TcpListener? _listener;

        private Relay(NpgsqlConnectionStringBuilder target)
        {
            _targetHost = target.Host!;
            _targetPort = target.Port;
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            _port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            ConnectionString = new NpgsqlConnectionStringBuilder(target.ConnectionString) { Host = "127.0.0.1", Port = _port, Timeout = 3 }.ConnectionString;
        }

        public string ConnectionString { get; }

        public static Relay Start(NpgsqlConnectionStringBuilder target)
        {
            var r = new Relay(target);
            r.Restore();
            return r;
        }

        public void Restore()
        {
            var l = new TcpListener(IPAddress.Loopback, _port);
            l.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            l.Start();
            _listener = l;
            _ = Task.Run(async () =>
            {
                while (true)
                {
                    TcpClient inbound;
                    try { inbound = await l.AcceptTcpClientAsync(); }
                    catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
                    var outbound = new TcpClient();
                    await outbound.ConnectAsync(_targetHost.StartsWith('/') ? "127.0.0.1" : _targetHost, _targetPort);
                    lock (_open) _open.AddRange([inbound, outbound]);
                    _ = Pipe(inbound, outbound);
                    _ = Pipe(outbound, inbound);
                }
            });
        }

        public void Cut()
        {
            _listener?.Stop();
            _listener = null;
            lock (_open)
            {
                foreach (var c in _open) c.Dispose();
                _open.Clear();
            }
        }

        private static async Task Pipe(TcpClient from, TcpClient to)
        {
            try { await from.GetStream().CopyToAsync(to.GetStream()); }
            catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or InvalidOperationException) { }
            finally { from.Dispose(); to.Dispose(); }
        }

        public ValueTask DisposeAsync()
        {
            Cut();
            return ValueTask.CompletedTask;
        }
    }
}
