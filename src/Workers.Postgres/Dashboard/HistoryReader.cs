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
        var list = new List<ThroughputPoint>(minutes);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new ThroughputPoint(r.GetDateTime(0), r.GetDouble(1), r.GetInt64(2), r.GetInt64(3)));
        return list;
    }

    public async Task<ThroughputTotals> TotalsAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("ThroughputTotals"));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return new ThroughputTotals(r.GetDouble(0), r.GetInt64(1), r.GetInt64(2));
    }
}
