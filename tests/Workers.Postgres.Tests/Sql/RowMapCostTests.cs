using System.Diagnostics;
using Npgsql;
using Workers.Postgres.Sql;
using Workers.Testing;
using Xunit.Abstractions;

namespace Workers.Postgres.Tests.Sql;

/// <summary>
/// Issue 14: reading by name through a <see cref="RowMap{T}"/> costs what positional reads cost:
/// ordinals are resolved once per reader, and a row allocates nothing beyond the row object itself.
/// Measured against positional reads of the same rows on the same connection, in one run.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RowMapCostTests(PostgresFixture pg, ITestOutputHelper output)
{
    private const int Rows = 50_000;
    private const string Sql = "SELECT g::bigint AS id, g::int AS attempt, g * 0.5::float8 AS seconds FROM generate_series(1, @rows) AS g";

    private static readonly RowMap<(long Id, int Attempt, double Seconds)> Map = new("Example", c =>
    {
        var id = c.Column<long>("id");
        var attempt = c.Column<int>("attempt");
        var seconds = c.Column<double>("seconds");
        return r => (r.Get(id), r.Get(attempt), r.Get(seconds));
    });

    [Fact]
    public async Task A_mapped_row_allocates_nothing_beyond_the_row_and_reads_as_fast_as_positional_reads()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var conn = await db.DataSource.OpenConnectionAsync();

        // Warm both paths (JIT, type loading) before measuring.
        Positional(conn, 100);
        Mapped(conn, 100);

        var (positionalBytes, positionalTime, positionalSum) = Positional(conn, Rows);
        var (mappedBytes, mappedTime, mappedSum) = Mapped(conn, Rows);
        // The time is only reported (the machine is shared: no timed assert): the best of five interleaved rounds each.
        for (var round = 0; round < 4; round++)
        {
            positionalTime = Min(positionalTime, Positional(conn, Rows).Time);
            mappedTime = Min(mappedTime, Mapped(conn, Rows).Time);
        }
        output.WriteLine($"{Rows} rows: positional {positionalBytes} B, best {positionalTime.TotalMilliseconds:0} ms; " +
                         $"mapped {mappedBytes} B, best {mappedTime.TotalMilliseconds:0} ms; time ratio {mappedTime / positionalTime:0.00}");

        Assert.Equal(positionalSum, mappedSum);
        // Per row, nothing: any object allocated per row costs at least 24 bytes a row. The margin is for one-off costs that
        // land in one measurement and not the other (a bound reader is ~100 bytes; tiered JIT and buffer growth, tens of kB).
        var extraPerRow = (double)(mappedBytes - positionalBytes) / Rows;
        Assert.True(extraPerRow < 4,
            $"Reading {Rows} rows through the mapping allocated {mappedBytes - positionalBytes} bytes ({extraPerRow:0.0} a row) more than positional reads.");
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static (long Bytes, TimeSpan Time, double Sum) Positional(NpgsqlConnection conn, int rows)
    {
        using var cmd = Command(conn, rows);
        var sum = 0.0;
        var before = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        using (var r = cmd.ExecuteReader())
            while (r.Read())
                sum += r.GetInt64(0) + r.GetInt32(1) + r.GetDouble(2);
        return (GC.GetAllocatedBytesForCurrentThread() - before, watch.Elapsed, sum);
    }

    private static (long Bytes, TimeSpan Time, double Sum) Mapped(NpgsqlConnection conn, int rows)
    {
        using var cmd = Command(conn, rows);
        var sum = 0.0;
        var before = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        using (var r = cmd.ExecuteReader())
        {
            var bound = Map.Bind(r);
            while (r.Read())
            {
                var row = bound.Read();
                sum += row.Id + row.Attempt + row.Seconds;
            }
        }
        return (GC.GetAllocatedBytesForCurrentThread() - before, watch.Elapsed, sum);
    }

    private static NpgsqlCommand Command(NpgsqlConnection conn, int rows)
    {
        var cmd = new NpgsqlCommand(Sql, conn);
        cmd.Parameters.AddWithValue("rows", rows);
        return cmd;
    }
}
