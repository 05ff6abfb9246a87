using Microsoft.Extensions.Logging.Abstractions;
using Workers.Core.Options;
using Workers.Fleet.Housekeeping;
using Workers.Postgres.Queue;
using Workers.Testing;
using FakeClock = Microsoft.Extensions.Time.Testing.FakeTimeProvider;
using MsOptions = Microsoft.Extensions.Options.Options;

namespace Workers.Fleet.Tests.Housekeeping;

/// <summary>Issue 14: retention pruning is a service of its own in worker processes (not a rider on the claim loop's rescue tick).</summary>
[Collection(PostgresCollection.Name)]
public sealed class RetentionPrunerTests(PostgresFixture pg)
{
    [Fact]
    public async Task The_pruner_prunes_at_start_then_looks_every_minute_and_prunes_again_once_the_interval_is_due()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeClock(new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero));
        var options = new RetentionOptions { PruneIntervalMinutes = 3 };
        var signals = new RetentionPruner.Signals();
        using var pruner = new RetentionPruner(new OpenDatabase(db.DataSource), MsOptions.Create(options), time, NullLogger<RetentionPruner>.Instance, signals);
        await pruner.StartAsync(CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));

        Assert.Equal(PruneStatus.Pruned, (await signals.Looked.WaitAsync(timeout.Token)).Status); // at start
        var statuses = new List<PruneStatus>();
        for (var minute = 1; minute <= 3; minute++)
        {
            time.Advance(RetentionPruner.CheckInterval);
            statuses.Add((await signals.Looked.WaitAsync(timeout.Token)).Status);
        }
        await pruner.StopAsync(CancellationToken.None);

        // Looked every minute; pruned again only once Retention:PruneIntervalMinutes (3) had passed.
        Assert.Equal([PruneStatus.NotDue, PruneStatus.NotDue, PruneStatus.Pruned], statuses);
        Assert.Equal(time.GetUtcNow().UtcDateTime, await db.ScalarAsync<DateTime>("SELECT last_run_at FROM maintenance_runs WHERE task = 'prune'"));
    }
}
