using System.Globalization;
using System.Text.RegularExpressions;
using Workers.Postgres.Fleet;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Pages;

/// <summary>Issue 11: a worker's clock offset from the database's shows on /fleet, in /api/fleet and in /metrics.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ClockOffsetTests(PostgresFixture pg)
{
    [Fact]
    public async Task A_worker_three_minutes_fast_is_flagged_on_the_fleet_page_the_api_and_metrics()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        // Each registry measures its own process clock against the database's: one three minutes fast, one true.
        await new WorkerRegistry(db.DataSource, new FakeTimeProvider(DateTimeOffset.UtcNow.AddMinutes(3)))
            .RegisterAsync(new WorkerRegistration("fast/1/0", "fast", 1, 0, null, null, null, "CPUExecutionProvider", 1, "t", ["default"]));
        await new WorkerRegistry(db.DataSource, TimeProvider.System)
            .RegisterAsync(new WorkerRegistration("true/2/0", "true", 2, 0, null, null, null, "CPUExecutionProvider", 1, "t", ["default"]));

        using var page = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/fleet"));
        var html = await page.Content.ReadAsStringAsync();
        Assert.Matches(new Regex("data-worker=\"fast/1/0\">.*<td class=\"num err clock-skewed\">\\+1(79|80)\\.\\d s</td>"), html);
        Assert.Matches(new Regex("data-worker=\"true/2/0\">.*<td class=\"num\">[+-]?0\\.\\d s</td>"), html);
        Assert.Contains("<th>clock offset</th>", html);

        var api = await d.GetJsonAsync("/api/fleet");
        var fast = api.GetProperty("workers").EnumerateArray().Single(w => w.GetProperty("id").GetString() == "fast/1/0");
        Assert.InRange(fast.GetProperty("clock_offset_ms").GetDouble(), 175_000, 185_000);

        using var metrics = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/metrics"));
        var text = await metrics.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE workers_clock_offset_seconds gauge", text);
        var m = Regex.Match(text, "^workers_clock_offset_seconds\\{worker=\"fast/1/0\",node=\"fast\"\\} (\\S+)$", RegexOptions.Multiline);
        Assert.True(m.Success, text);
        Assert.InRange(double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), 175, 185);
    }
}
