using Workers.Postgres.Fleet;
using Workers.Postgres.Sql;
using Workers.Testing;

namespace Workers.Postgres.Tests.Fleet;

/// <summary>Issue 11: a worker's clock is measured against the database's at registration and on every heartbeat.</summary>
[Collection(PostgresCollection.Name)]
public sealed class WorkerRegistryClockTests(PostgresFixture pg)
{
    private static WorkerRegistration Worker(string id) => new(id, "node", 1, 0, null, null, null, "CPUExecutionProvider", 1, "t", ["default"]);

    [Fact]
    public async Task A_clock_three_minutes_fast_is_measured_stored_and_flagged_as_skewed()
    {
        await using var db = await pg.CreateSchemaAsync();
        var fast = new FakeTimeProvider(TimeProvider.System.GetUtcNow() + TimeSpan.FromMinutes(3));
        var registry = new WorkerRegistry(db.DataSource, fast);

        var atStart = await registry.RegisterAsync(Worker("fast/1/0"));
        Assert.InRange(atStart, 175_000, 185_000);

        // Now three minutes slow. FakeTimeProvider never goes back in time, so the same worker's
        // next heartbeat comes through a registry on a second clock set three minutes behind.
        var slow = new FakeTimeProvider(TimeProvider.System.GetUtcNow() - TimeSpan.FromMinutes(3));
        var beat = await new WorkerRegistry(db.DataSource, slow).HeartbeatAsync("fast/1/0", null, null);
        Assert.NotNull(beat);
        Assert.InRange(beat.Value, -185_000, -175_000);

        var row = Assert.Single(await new WorkerRegistry(db.DataSource, TimeProvider.System).ListAsync());
        Assert.Equal(beat.Value, row.ClockOffsetMs);
        Assert.NotNull(row.ClockCheckedAt);
        Assert.True(row.ClockSkewed(TimeSpan.FromSeconds(2)));
        Assert.False(row.ClockSkewed(TimeSpan.FromMinutes(4)));
    }

    [Fact]
    public async Task A_clock_in_sync_measures_a_few_milliseconds_and_is_not_flagged()
    {
        await using var db = await pg.CreateSchemaAsync();
        var registry = new WorkerRegistry(db.DataSource, TimeProvider.System);
        Assert.InRange(await registry.RegisterAsync(Worker("true/1/0")), -1000, 1000);
        Assert.InRange((await registry.HeartbeatAsync("true/1/0", null, null))!.Value, -1000, 1000);
        Assert.False(Assert.Single(await registry.ListAsync()).ClockSkewed(TimeSpan.FromSeconds(2)));
        Assert.Null(await registry.HeartbeatAsync("gone/1/0", null, null)); // no row: nothing measured
    }

    [Fact]
    public async Task The_start_up_measurement_keeps_the_best_round_trip_and_flags_only_an_offset_beyond_its_uncertainty()
    {
        await using var db = await pg.CreateSchemaAsync();
        var fast = await new WorkerRegistry(db.DataSource, new FakeTimeProvider(TimeProvider.System.GetUtcNow() + TimeSpan.FromMinutes(3))).MeasureClockAsync();
        Assert.InRange(fast.OffsetMs, 175_000, 185_000);
        Assert.True(fast.Beyond(TimeSpan.FromSeconds(2)));
        var real = await new WorkerRegistry(db.DataSource, TimeProvider.System).MeasureClockAsync();
        Assert.InRange(real.OffsetMs, -1000, 1000);
        Assert.False(real.Beyond(TimeSpan.FromSeconds(2)));
        // A reading whose round trip leaves room for doubt is not called skewed.
        Assert.False(new ClockReading(2500, 1000).Beyond(TimeSpan.FromSeconds(2)));
        Assert.True(new ClockReading(-3500, 1000).Beyond(TimeSpan.FromSeconds(2)));
    }

    [Fact]
    public async Task Staleness_is_judged_by_the_heartbeat_age_on_the_database_clock_not_the_readers()
    {
        await using var db = await pg.CreateSchemaAsync();
        await new WorkerRegistry(db.DataSource, TimeProvider.System).RegisterAsync(Worker("w/1/0"));
        // The age is computed by the listing statement itself (now() - heartbeat_at): a reader's own clock plays no part.
        var reader = new WorkerRegistry(db.DataSource, TimeProvider.System);
        var row = Assert.Single(await reader.ListAsync());
        Assert.InRange(row.HeartbeatAge, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        Assert.Equal("running", row.StateAt(TimeSpan.FromSeconds(30)));
        await using (var cmd = db.DataSource.CreateCommand("UPDATE workers SET heartbeat_at = now() - interval '1 minute'"))
            await cmd.ExecuteNonQueryAsync();
        Assert.Equal("stale", Assert.Single(await reader.ListAsync()).StateAt(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void Production_passes_no_time_so_the_database_clock_decides_and_tests_pin_it()
    {
        Assert.Equal(DBNull.Value, DbClock.Now(TimeProvider.System).Value);
        var pinned = new FakeTimeProvider();
        Assert.Equal(pinned.GetUtcNow().UtcDateTime, DbClock.Now(pinned).Value);
        // The skew measurement always sends this process's own clock.
        Assert.Equal(pinned.GetUtcNow().UtcDateTime, DbClock.ClientNow(pinned).Value);
    }
}
