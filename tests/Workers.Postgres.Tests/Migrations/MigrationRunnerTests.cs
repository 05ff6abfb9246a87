using Npgsql;
using Workers.Postgres.Migrations;
using Workers.Testing;

namespace Workers.Postgres.Tests.Migrations;

[Collection(PostgresCollection.Name)]
public sealed class MigrationRunnerTests(PostgresFixture pg)
{
    [Fact]
    public async Task Migrating_twice_is_a_no_op()
    {
        await using var db = await pg.CreateSchemaAsync(migrate: false);
        var runner = new MigrationRunner(db.DataSource);
        var first = await runner.MigrateAsync();
        Assert.Equal(MigrationRunner.Embedded().Select(m => m.Version), first);
        Assert.Empty(await runner.MigrateAsync());
        Assert.Equal((long)first.Count, await db.ScalarAsync<long>("SELECT count(*) FROM schema_migrations"));
    }

    [Fact]
    public async Task Ten_runners_starting_at_once_apply_each_migration_exactly_once()
    {
        await using var db = await pg.CreateSchemaAsync(migrate: false);
        // Separate data sources: separate sessions, as ten nodes would have.
        var sources = Enumerable.Range(0, 10).Select(_ => NpgsqlDataSource.Create(db.ConnectionString)).ToList();
        try
        {
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var runs = sources.Select(ds => Task.Run(async () => { await start.Task; return await new MigrationRunner(ds).MigrateAsync(); })).ToList();
            start.SetResult();
            var results = await Task.WhenAll(runs);
            var expected = MigrationRunner.Embedded().Select(m => m.Version).ToList();
            Assert.Equal(expected, results.SelectMany(r => r).Order());
            Assert.Single(results, r => r.Count > 0);
        }
        finally
        {
            foreach (var ds in sources) await ds.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_changed_applied_migration_is_refused_with_a_message_naming_the_file()
    {
        await using var db = await pg.CreateSchemaAsync(migrate: false);
        var dir = Directory.CreateTempSubdirectory("workers-migrations-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "001_first.sql"), "CREATE TABLE a (x int);");
            await File.WriteAllTextAsync(Path.Combine(dir, "002_second.sql"), "CREATE TABLE b (x int);");
            var runner = new MigrationRunner(db.DataSource);
            Assert.Equal([1, 2], await runner.MigrateAsync(MigrationRunner.FromDirectory(dir)));

            await File.WriteAllTextAsync(Path.Combine(dir, "002_second.sql"), "CREATE TABLE b (x bigint);");
            await File.WriteAllTextAsync(Path.Combine(dir, "003_third.sql"), "CREATE TABLE c (x int);");
            var e = await Assert.ThrowsAsync<MigrationException>(() => runner.MigrateAsync(MigrationRunner.FromDirectory(dir)));
            Assert.Contains("002_second.sql was changed after it was applied", e.Message);
            Assert.Contains("new migration", e.Message);
            // Nothing after the refusal was applied.
            Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM information_schema.tables WHERE table_schema = @s AND table_name = 'c'", ("s", db.Name)));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task A_failing_migration_leaves_nothing_half_applied()
    {
        await using var db = await pg.CreateSchemaAsync(migrate: false);
        var dir = Directory.CreateTempSubdirectory("workers-migrations-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "001_bad.sql"), "CREATE TABLE ok (x int); CREATE TABLE broken (x nosuchtype);");
            var e = await Assert.ThrowsAsync<MigrationException>(() => new MigrationRunner(db.DataSource).MigrateAsync(MigrationRunner.FromDirectory(dir)));
            Assert.Contains("001_bad.sql failed", e.Message);
            Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM information_schema.tables WHERE table_schema = @s AND table_name = 'ok'", ("s", db.Name)));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task A_database_ahead_of_the_program_is_refused_naming_both_versions_and_nothing_is_applied()
    {
        // Issue 13: a database migrated by a newer release was not detected; `migrate` said "up to date".
        await using var db = await pg.CreateSchemaAsync(migrate: false);
        var dir = Directory.CreateTempSubdirectory("workers-migrations-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "001_first.sql"), "CREATE TABLE a (x int);");
            await File.WriteAllTextAsync(Path.Combine(dir, "002_second.sql"), "CREATE TABLE b (x int);");
            await new MigrationRunner(db.DataSource).MigrateAsync(MigrationRunner.FromDirectory(dir));

            // An older build: it knows 001 only, and would also add a table of its own.
            File.Delete(Path.Combine(dir, "002_second.sql"));
            var e = await Assert.ThrowsAsync<SchemaAheadException>(() => new MigrationRunner(db.DataSource).MigrateAsync(MigrationRunner.FromDirectory(dir)));
            Assert.Equal(2, e.DatabaseVersion);
            Assert.Equal(1, e.ProgramVersion);
            Assert.Contains("version 002 (002_second.sql)", e.Message);
            Assert.Contains("up to 001", e.Message);
            Assert.Contains("newer release", e.Message);
            Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM schema_migrations"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task The_embedded_migrations_refuse_a_database_with_a_newer_row()
    {
        await using var db = await pg.CreateSchemaAsync();
        var newest = MigrationRunner.Embedded()[^1].Version;
        await db.ScalarAsync<int>("INSERT INTO schema_migrations (version, name, checksum) VALUES (@v, 'from_the_future', 'x') RETURNING version", ("v", newest + 1));
        var e = await Assert.ThrowsAsync<SchemaAheadException>(() => new MigrationRunner(db.DataSource).MigrateAsync());
        Assert.Equal(newest + 1, e.DatabaseVersion);
        Assert.Equal(newest, e.ProgramVersion);
    }

    [Fact]
    public void Badly_named_files_are_refused()
    {
        var dir = Directory.CreateTempSubdirectory("workers-migrations-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "first.sql"), "SELECT 1;");
            Assert.Contains("NNN_name.sql", Assert.Throws<MigrationException>(() => MigrationRunner.FromDirectory(dir)).Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task A_connection_dropped_mid_migration_surfaces_as_the_database_error_not_as_a_failed_unlock()
    {
        // Issue 11: a node starting during a PostgreSQL restart or failover must see a transient database error (and
        // retry), not "Connection is not open" from the unlock, which crashed the supervisor in the soak.
        await using var db = await pg.CreateSchemaAsync(migrate: false);
        var dropped = new Migration(1, "dropped", "SELECT pg_terminate_backend(pg_backend_pid())");
        var e = await Assert.ThrowsAnyAsync<Exception>(() => new MigrationRunner(db.DataSource).MigrateAsync([dropped]));
        Assert.True(e is NpgsqlException, e.ToString());
    }
}
