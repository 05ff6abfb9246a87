using System.Diagnostics;
using Workers.Testing;
using Xunit.Abstractions;

namespace Workers.Dashboard.Tests.Api;

/// <summary>
/// Issue 12 asks for telemetry roll-ups as recurring jobs. There is nothing to roll up: completions
/// write throughput_minutes at the minute grain inside their own transaction, gpu_telemetry keeps one
/// row per GPU (the latest sample), and the fold of old minutes into the lifetime totals is part of
/// the retention prune, already the recurring job workers-retention-prune. What remains is read on
/// request: GET /api/history sums a minute's slot rows. This is its worst case, a full day of a fleet
/// busy enough to use all 64 slots every minute (92,160 rows): the sums are exact and the time is
/// written to the test output as a figure, not asserted.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class HistoryAtScaleTests(PostgresFixture pg, ITestOutputHelper output)
{
    [Fact]
    public async Task A_full_day_of_every_slot_sums_on_request_without_a_roll_up()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 30, TimeSpan.Zero));
        await using var d = await TestDashboard.StartAsync(db, time: time);
        Assert.Equal(1440 * 64, await db.ScalarAsync<int>("""
            WITH t AS (
                INSERT INTO throughput_minutes (minute, slot, audio_seconds, shards_succeeded, attempts_failed)
                SELECT timestamptz '2026-03-01 12:00:00+00' - m * interval '1 minute', s, 10, 1, s % 2
                FROM generate_series(0, 1439) m CROSS JOIN generate_series(0, 63) s
                RETURNING 1)
            SELECT count(*)::int FROM t
            """));
        await using (var analyze = db.DataSource.CreateCommand("ANALYZE throughput_minutes")) await analyze.ExecuteNonQueryAsync();

        var h = await d.GetJsonAsync("/api/history?minutes=1440");
        var points = h.GetProperty("points").EnumerateArray().ToList();
        Assert.Equal(1440, points.Count);
        Assert.All(points, p =>
        {
            Assert.Equal(64, p.GetProperty("shards_succeeded").GetInt32());
            Assert.Equal(640.0, p.GetProperty("audio_seconds").GetDouble());
            Assert.Equal(32, p.GetProperty("attempts_failed").GetInt32());
        });

        var ms = new List<double>();
        for (var i = 0; i < 10; i++)
        {
            var sw = Stopwatch.StartNew();
            await d.GetJsonAsync("/api/history?minutes=1440");
            ms.Add(sw.Elapsed.TotalMilliseconds);
        }
        ms.Sort();
        output.WriteLine($"/api/history?minutes=1440 over {1440 * 64:N0} minute rows: median {ms[5]:0.0} ms, max {ms[^1]:0.0} ms");
    }
}
