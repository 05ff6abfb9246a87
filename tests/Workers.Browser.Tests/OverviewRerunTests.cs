using Microsoft.Playwright;
using Workers.Testing;
using static Microsoft.Playwright.Assertions;

namespace Workers.Browser.Tests;

/// <summary>
/// The dashboard as it is used when storage drops: a corpus enqueued with `workers enqueue` fails
/// shard by shard while its folder is gone; the overview shows them dead, the dead-shard list names
/// the cause; once the folder is back, the `re-run` buttons requeue them, a worker finishes them,
/// and the overview reaches 100 % by itself, without a reload.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class OverviewRerunTests(PostgresFixture pg)
{
    [Fact]
    public async Task Dead_shards_of_a_vanished_corpus_are_shown_rerun_from_the_browser_and_completed_on_the_overview()
    {
        await using var s = await DashboardScenario.StartAsync(pg, nameof(OverviewRerunTests));
        await s.StepsAsync(async () =>
        {
            var folder = s.GenerateCorpus("talks");
            await s.WorkersAsync("enqueue", folder, "--name", "talks", "--shard-minutes", "1");
            var shards = (int)await s.ScalarAsync("SELECT count(*) FROM shards");
            Assert.True(shards >= 2, $"{shards} shard(s); the scenario wants several");

            var page = s.Page;
            await page.GotoAsync("/corpora");
            await Expect(s.OverviewRow("talks")).ToContainTextAsync("0.0%");
            await s.ExpectShardsAsync("talks", shards, 0, 0, 0, 0);
            await s.ScreenshotAsync("enqueued");

            // The folder disappears before any worker runs: every shard fails, and with one attempt it is dead.
            using (s.TakeAway(folder))
            {
                await s.RunWorkersAsync();
                Assert.Equal(shards, await s.ScalarAsync(
                    "SELECT count(*) FROM shard_attempts WHERE outcome = 'failed' AND error_type = 'CorpusStorageUnavailableException'"));
                await s.ExpectShardsAsync("talks", 0, 0, 0, shards, 0); // the open overview refreshes itself
                await s.ScreenshotAsync("overview-dead");

                await page.GotoAsync("/shards?corpus=talks&state=dead");
                var rerun = page.GetByRole(AriaRole.Button, new() { Name = "re-run", Exact = true });
                await Expect(rerun).ToHaveCountAsync(shards);
                await Expect(page.GetByText("corpus storage unavailable").First).ToBeVisibleAsync();
                await s.ScreenshotAsync("dead-shards");
            }

            // The folder is back: re-run the dead shards one button at a time; each answers with the list, one shorter.
            var buttons = page.GetByRole(AriaRole.Button, new() { Name = "re-run", Exact = true });
            for (var left = shards; left > 0; left--)
            {
                await s.SubmitAsync(buttons.First);
                await Expect(buttons).ToHaveCountAsync(left - 1, new() { Timeout = DashboardScenario.WaitMs });
            }
            Assert.Equal(0L, await s.ScalarAsync("SELECT count(*) FROM shards WHERE state <> 'queued'"));

            await page.GotoAsync("/corpora");
            await s.ExpectShardsAsync("talks", shards, 0, 0, 0, 0);
            await s.ScreenshotAsync("rerun-queued");
            await s.MarkPageAsync();

            var run = s.RunWorkersAsync();
            await Expect(s.OverviewRow("talks")).ToContainTextAsync("100.0%", new() { Timeout = DashboardScenario.WaitMs });
            await s.ExpectShardsAsync("talks", 0, 0, shards, 0, 0);
            await s.AssertNotReloadedAsync();
            await s.ScreenshotAsync("overview-complete");
            await run;
            Assert.True(await s.ScalarAsync("SELECT count(*) FROM segments") > 0, "the re-run wrote no segments");
        });
    }
}
