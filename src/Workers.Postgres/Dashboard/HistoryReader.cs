using Npgsql;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Dashboard;

/// <summary>One minute of the fleet's throughput (table throughput_minutes, migration 007).</summary>
public sealed record ThroughputPoint(DateTime At, double AudioSeconds, long ShardsSucceeded, long AttemptsFailed);

/// <summary>Lifetime totals: never drop, not on a re-run, not when old minutes are pruned.</summary>
public sealed record ThroughputTotals(double AudioSeconds, long ShardsSucceeded, long AttemptsFailed);

/// <summary>Reads the per-minute throughput history and the lifetime counters.</summary>
public sealed class HistoryReader(NpgsqlDataSource db, TimeProvider time)
{
    /// <summary>The most minutes one history read returns (a day).</summary>
    public const int MaxMinutes = 1440;

    /// <summary>
    /// The last <paramref name="minutes"/> minutes up to and including the current (partial) one,
    /// oldest first, one point per minute, zeros where nothing finished.
    /// </summary>
    public async Task<IReadOnlyList<ThroughputPoint>> MinutesAsync(int minutes, CancellationToken ct = default)
    {
        if (minutes is < 1 or > MaxMinutes)
            throw new ArgumentOutOfRangeException(nameof(minutes), minutes, $"minutes must be within 1..{MaxMinutes}.");
        // The current minute is the database's (issue 11): the minutes were keyed on its clock too.
        await using var cmd = db.CreateCommand(SqlCatalog.Get("HistoryMinutes"));
        cmd.Parameters.Add(DbClock.Now(time));
        cmd.Parameters.AddWithValue("minutes", minutes);
        return await Minutes.ListAsync(cmd, ct);
    }

    public async Task<ThroughputTotals> TotalsAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("ThroughputTotals"));
        return await Totals.SingleAsync(cmd, ct);
    }

    // The row mappings of this class's statements (Sql/history.sql), one per statement.

    private static readonly RowMap<ThroughputPoint> Minutes = new("HistoryMinutes", c =>
    {
        var minute = c.Column<DateTime>("minute");
        var audio = c.Column<double>("audio_seconds");
        var succeeded = c.Column<long>("shards_succeeded");
        var failed = c.Column<long>("attempts_failed");
        return r => new ThroughputPoint(r.Get(minute), r.Get(audio), r.Get(succeeded), r.Get(failed));
    });

    private static readonly RowMap<ThroughputTotals> Totals = new("ThroughputTotals", c =>
    {
        var audio = c.Column<double>("audio_seconds");
        var succeeded = c.Column<long>("shards_succeeded");
        var failed = c.Column<long>("attempts_failed");
        return r => new ThroughputTotals(r.Get(audio), r.Get(succeeded), r.Get(failed));
    });
}
