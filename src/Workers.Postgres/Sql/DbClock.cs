using Npgsql;
using NpgsqlTypes;

namespace Workers.Postgres.Sql;

/// <summary>
/// The time the queue's statements compare against: <c>coalesce(@now::timestamptz, now())</c>
/// (issue 11). Production composes every component with <see cref="TimeProvider.System"/>, which
/// passes NULL, so the database's clock decides leases, claims (<c>not_before</c>), retry backoff,
/// rescue, stale workers, the throughput minute and retention for the whole fleet: a node whose
/// clock is minutes off can neither rescue live workers' shards nor starve its own claims. Any
/// other <see cref="TimeProvider"/> (a test's fake clock) pins <c>@now</c> through the very same
/// statements, so tests keep full control of time without sleeping. In-process timers (heartbeat
/// periods, poll waits) keep using the injected <see cref="TimeProvider"/> itself.
/// </summary>
public static class DbClock
{
    /// <summary>True when <paramref name="time"/> pins the statements' time (tests); false for the system clock (production).</summary>
    public static bool IsPinned(TimeProvider time) => !ReferenceEquals(time, TimeProvider.System);

    /// <summary>The <c>@now</c> parameter: NULL (the database's clock) in production, the pinned time in tests.</summary>
    public static NpgsqlParameter Now(TimeProvider time) =>
        new("now", NpgsqlDbType.TimestampTz) { Value = IsPinned(time) ? time.GetUtcNow().UtcDateTime : DBNull.Value };

    /// <summary>The <c>@client_now</c> parameter of the skew measurement: this process's own clock, always (not pinned away).</summary>
    public static NpgsqlParameter ClientNow(TimeProvider time) =>
        new("client_now", NpgsqlDbType.TimestampTz) { Value = time.GetUtcNow().UtcDateTime };

    /// <summary>The database's clock now (<c>clock_timestamp()</c>, not the transaction's start), in UTC: one round trip on
    /// <paramref name="connection"/>. The worker's start-up skew check samples it; the pipeline bench stamps a launch with it.</summary>
    public static async Task<DateTime> ReadAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(SqlCatalog.Get("DatabaseClock"), connection);
        return DateTime.SpecifyKind(await DatabaseClock.SingleAsync(cmd, ct), DateTimeKind.Utc);
    }

    private static readonly RowMap<DateTime> DatabaseClock = new("DatabaseClock", c =>
    {
        var now = c.Column<DateTime>("clock_timestamp");
        return r => r.Get(now);
    });
}
