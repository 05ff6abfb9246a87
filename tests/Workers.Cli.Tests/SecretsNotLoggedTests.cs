using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Npgsql;
using Workers.Audio.Synthesis;
using Workers.Dashboard.Security;
using Workers.Fleet.Supervisor;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// Secrets never reach output, logs or the database (issue 6): every command runs with a
/// connection string holding a distinctive password (a role made for this test), the dashboard
/// with users and a Basic-auth request with a wrong and a right password, and connections that
/// fail (a wrong password; a password with an unquoted ';', which Npgsql would quote back in its
/// parse error). Neither stdout, stderr, the serve log, nor any row of the schema (attempts with
/// their error and stack, audit, failures, workers) holds a password or the Basic header value.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class SecretsNotLoggedTests(PostgresFixture pg) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-secrets-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task No_password_or_basic_header_appears_in_output_logs_or_rows()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var tag = Guid.NewGuid().ToString("N")[..12];
        var role = "secret_" + tag;
        var dbPassword = $"Tr0mbone-{tag}-DbSecret";
        var wrongPassword = $"Kazoo-{tag}-WrongSecret";
        var leakyTail = $"Oboe-{tag}-AfterSemicolon";
        var dashboardPassword = $"Tuba-{tag}-WebSecret";
        var wrongDashboardPassword = $"Harp-{tag}-WebWrong";
        string Basic(string password) => Convert.ToBase64String(Encoding.UTF8.GetBytes("ops:" + password));
        var secrets = new[] { dbPassword, wrongPassword, leakyTail, dashboardPassword, wrongDashboardPassword, Basic(dashboardPassword), Basic(wrongDashboardPassword) };

        // Role names are identifiers, not parameters: this one is generated above.
        await ExecuteAsync(db, $"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{dbPassword}'");
        try
        {
            var cs = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = role, Password = dbPassword }.ConnectionString;
            var corpus = Path.Combine(_dir, "corpus");
            new SpeechCorpusGenerator(Path.Combine(_dir, "espeak")).WriteWav(Path.Combine(corpus, "talk.wav"), 20, new Random(4));
            File.WriteAllText(Path.Combine(corpus, "broken.mp3"), "not audio");
            var gone = Path.Combine(_dir, "gone");
            TestAudio.WriteWav(Path.Combine(gone, "x.wav"), 5);
            var env = WorkersProcess.Env(cs, Path.Combine(_dir, "tmp"), ("Queue__MaxAttempts", "1"));
            var outputs = new List<string>();
            async Task<WorkersProcess.Result> Run(Dictionary<string, string?> e, params string[] args)
            {
                var r = await WorkersProcess.RunAsync(e, TimeSpan.FromSeconds(90), args);
                outputs.Add($"workers {string.Join(' ', args)}\n{r}");
                return r;
            }

            Assert.Equal(0, (await Run(env, "enqueue", corpus, "--name", "talks", "--json")).ExitCode);
            Assert.Equal(0, (await Run(env, "enqueue", gone, "--name", "gone")).ExitCode);
            Directory.Delete(gone, true); // its shard fails: an attempt with an error message and a stack
            Assert.Equal(0, (await Run(env, "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle")).ExitCode);
            Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE error_stack IS NOT NULL"));
            Assert.Equal(0, (await Run(env, "status")).ExitCode);
            Assert.Equal(0, (await Run(env, "status", "talks", "--json")).ExitCode);

            var wrong = new Dictionary<string, string?>(env) { ["ConnectionStrings__Workers"] = new NpgsqlConnectionStringBuilder(cs) { Password = wrongPassword }.ConnectionString };
            var refused = await Run(wrong, "status");
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains("password authentication failed", refused.StdErr);
            var malformed = new Dictionary<string, string?>(env) { ["ConnectionStrings__Workers"] = $"Host=127.0.0.1;Username={role};Password={dbPassword};{leakyTail};Database=x" };
            var bad = await Run(malformed, "status");
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains("not a valid PostgreSQL connection string", bad.StdErr);

            outputs.Add(await ServeAndSignInAsync(env, dashboardPassword, wrongDashboardPassword));
            Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log WHERE actor = 'ops'"));

            var rows = await AllRowsAsync(db);
            Assert.Contains("CorpusStorageUnavailableException", rows); // the rows were read
            foreach (var secret in secrets)
            {
                // Ignoring case: Npgsql lower-cases the keywords it quotes back.
                Assert.DoesNotContain(secret, rows, StringComparison.OrdinalIgnoreCase);
                foreach (var text in outputs) Assert.False(text.Contains(secret, StringComparison.OrdinalIgnoreCase), $"'{secret}' leaked in:\n{text}");
            }
        }
        finally
        {
            await ExecuteAsync(db, $"DROP OWNED BY {role}");
            await ExecuteAsync(db, $"DROP ROLE {role}");
        }
    }

    /// <summary>Runs `workers serve` with an admin user, signs in wrong then right, does one audited POST; returns the serve log.</summary>
    private async Task<string> ServeAndSignInAsync(Dictionary<string, string?> env, string password, string wrongPassword)
    {
        var port = FreePort();
        var serveEnv = new Dictionary<string, string?>(env)
        {
            ["Dashboard__Users__0__Name"] = "ops",
            ["Dashboard__Users__0__Role"] = "admin",
            ["Dashboard__Users__0__PasswordHash"] = PasswordHash.Create(password, 10_000).ToString(),
            ["Dashboard__LocalRequiresCredentials"] = "true",
            // Hangfire's tables apart from other tests' dashboards (owned by the test's role: DROP OWNED drops it).
            ["Dashboard__HangfireSchema"] = "hangfire_" + Guid.NewGuid().ToString("N")[..12],
        };
        var log = Path.Combine(_dir, "serve.log");
        using var serve = WorkersProcess.StartLogged(serveEnv, log, "serve", "--urls", $"http://127.0.0.1:{port}");
        try
        {
            using var http = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer() }) { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var deadline = Stopwatch.StartNew();
            while (!File.Exists(log) || !File.ReadAllText(log).Contains("dashboard listening"))
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60) && !serve.HasExited, "serve did not start:\n" + (File.Exists(log) ? File.ReadAllText(log) : ""));
                await Task.Delay(100); // polls a real `workers serve` process's log for its start-up line
            }
            HttpRequestMessage Request(HttpMethod method, string path, string pw) =>
                new(method, path) { Headers = { Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ops:" + pw))) } };

            using (var denied = await http.SendAsync(Request(HttpMethod.Get, "/api/corpora", wrongPassword)))
                Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
            using (var ok = await http.SendAsync(Request(HttpMethod.Get, "/api/corpora", password)))
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            string token;
            using (var af = await http.SendAsync(Request(HttpMethod.Get, "/api/antiforgery", password)))
                token = JsonDocument.Parse(await af.Content.ReadAsStringAsync()).RootElement.GetProperty("token").GetString()!;
            var post = Request(HttpMethod.Post, "/api/corpora/talks/cancel", password);
            post.Headers.Add("X-CSRF-TOKEN", token);
            using (var cancelled = await http.SendAsync(post))
                Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        }
        finally
        {
            Signals.Send(serve.Id, Signals.SigTerm);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try { await serve.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException) { serve.Kill(entireProcessTree: true); }
        }
        return "workers serve\n" + File.ReadAllText(log);
    }

    /// <summary>Every row of every table of the test's schema, as text.</summary>
    private static async Task<string> AllRowsAsync(TestSchema db)
    {
        var tables = new List<string>();
        await using (var cmd = db.DataSource.CreateCommand("SELECT table_name FROM information_schema.tables WHERE table_schema = @s AND table_type = 'BASE TABLE'"))
        {
            cmd.Parameters.AddWithValue("s", db.Name);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) tables.Add(r.GetString(0));
        }
        var all = new StringBuilder();
        foreach (var t in tables) // names from the catalog, quoted
        {
            await using var cmd = db.DataSource.CreateCommand($"SELECT t::text FROM \"{t}\" t");
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) all.AppendLine(r.GetString(0));
        }
        return all.ToString();
    }

    private static async Task ExecuteAsync(TestSchema db, string sql)
    {
        await using var cmd = db.DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
