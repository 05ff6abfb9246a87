using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Workers.Cli.Hosting;
using Workers.Testing;

namespace Workers.Cli.Tests.Hosting;

/// <summary>
/// Issue 14: the database service every command takes by constructor (it replaced CliContext's database part).
/// A malformed connection string is refused with a message that names the setting and what to do, and never
/// the string itself (an unquoted password holding ';' would otherwise be named as "the keyword" Npgsql could
/// not take); opening migrates once and releases the housekeeping services that wait for it.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class WorkersDatabaseTests(PostgresFixture pg)
{
    private static WorkersDatabase Database(string? connectionString, string? localRoot = null) =>
        new(Options.Create(new DatabaseSettings { ConnectionString = connectionString, LocalRoot = localRoot }), NullLoggerFactory.Instance, TimeProvider.System);

    [Theory]
    [InlineData("Host=db.example;Username=workers;Password=s3cr;et-Tail=x", "s3cr", "et-Tail")]
    [InlineData("Host=db.example;Username=workers;Password=hunter2;Port=not-a-port", "hunter2", "not-a-port")]
    [InlineData("Host=db.example;Password=pa=ss;w0rdtail", "pa=ss", "w0rdtail")]
    public async Task A_malformed_connection_string_is_refused_without_its_password(string connectionString, string secret, string rest)
    {
        await using var db = Database(connectionString);
        var e = Assert.Throws<ArgumentException>(() => db.ConfiguredConnectionString);
        Assert.StartsWith("ConnectionStrings:Workers is not a valid PostgreSQL connection string: ", e.Message);
        Assert.Contains("Quote values that hold ';' or '='", e.Message);
        Assert.DoesNotContain(secret, e.Message);
        Assert.DoesNotContain(rest, e.Message);
        // Opening fails the same way, before any connection is tried.
        var opening = await Assert.ThrowsAsync<ArgumentException>(() => db.OpenAsync(CancellationToken.None));
        Assert.Equal(e.Message, opening.Message);
        Assert.DoesNotContain(secret, opening.ToString());
    }

    [Fact]
    public async Task Without_a_connection_string_the_local_cluster_under_Database_LocalRoot_is_used()
    {
        var root = Path.Combine(Path.GetTempPath(), "workers-db-service-" + Guid.NewGuid().ToString("N"));
        await using var db = Database(null, root);
        Assert.Null(db.ConfiguredConnectionString);
        var status = await db.LocalCluster().StatusAsync(CancellationToken.None);
        Assert.False(status.Exists);
        Assert.Equal(root, status.Root);
    }

    [Fact]
    public async Task Opening_migrates_once_and_releases_what_waits_for_it()
    {
        await using var schema = await pg.CreateSchemaAsync(migrate: false);
        await using var db = Database(schema.ConnectionString);
        Assert.Equal(schema.ConnectionString, db.ConfiguredConnectionString);
        var waiting = db.WhenOpenAsync(CancellationToken.None);
        Assert.False(waiting.IsCompleted);

        var opened = await db.OpenAsync(CancellationToken.None);
        Assert.Same(opened, await waiting.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Same(opened, await db.OpenAsync(CancellationToken.None));
        Assert.True(await schema.ScalarAsync<long>("SELECT count(*) FROM schema_migrations") > 0);
    }
}
