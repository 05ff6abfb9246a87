using System.Net;
using Hangfire;
using Hangfire.Storage;
using Microsoft.Extensions.DependencyInjection;
using Workers.Dashboard.Maintenance;
using Workers.Dashboard.Tests.Pages;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Maintenance;

/// <summary>Issue 12: retention pruning is a Hangfire recurring job, listed on its Recurring page and run by the dashboard's server.</summary>
[Collection(PostgresCollection.Name)]
public sealed class RetentionPruneJobTests(PostgresFixture pg)
{
    [Fact]
    public async Task The_prune_is_a_recurring_job_that_triggered_from_hangfires_page_prunes_old_attempts()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        var recurringPage = await d.GetHtmlAsync("/recurring");
        Assert.Contains(RetentionPruneJob.RecurringId, recurringPage);
        Assert.Contains("Retention prune", recurringPage);

        // An attempt finished long ago (past Retention:AttemptDays) on a shard with a newer one: the prune deletes it.
        var shard = await db.ScalarAsync<long>("SELECT min(id) FROM shards WHERE corpus_id = @c", ("c", await d.SeedCorpusAsync(1)));
        // Ages on the dashboard's clock, which the prune's statements use (DbClock), not the server's now().
        await db.ScalarAsync<int>("""
            WITH x AS (INSERT INTO shard_attempts (shard_id, attempt, worker, node, started_at, finished_at, outcome)
                       VALUES (@s, 1, 'w', 'n', @now - interval '400 days', @now - interval '400 days', 'failed'),
                              (@s, 2, 'w', 'n', @now - interval '1 hour', @now - interval '1 hour', 'failed') RETURNING 1)
            SELECT count(*)::int FROM x
            """, ("s", shard), ("now", d.Time.GetUtcNow()));

        using (var r = await d.PostFormAsync("/recurring/trigger", [new("jobs[]", RetentionPruneJob.RecurringId)]))
            Assert.True(r.IsSuccessStatusCode, $"{(int)r.StatusCode}");
        string jobId;
        using (var c = d.Services.GetRequiredService<JobStorage>().GetConnection())
            jobId = c.GetRecurringJobs([RetentionPruneJob.RecurringId]).Single().LastJobId;
        var done = await d.WaitForJobAsync(jobId, "Succeeded");
        Assert.Contains("pruned 1 attempts", done["Result"]);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE shard_id = @s", ("s", shard)));
    }
}
