using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Workers.Testing;
using static Microsoft.Playwright.Assertions;

namespace Workers.Browser.Tests;

/// <summary>
/// Issue 5's whole browser scenario, by the shared dashboard contract: enqueue a generated corpus
/// through the /enqueue form (preview, then confirm), see its shards fail while its storage is gone
/// (overview, /failures, /shards/{id} with the error type), bring the storage back, re-run one shard
/// from its page and the rest with `re-run all failed`, and watch the overview reach 100 % by itself.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class EnqueueToRerunScenarioTests(PostgresFixture pg)
{
    [Fact]
    public async Task A_corpus_enqueued_through_the_form_fails_while_its_storage_is_gone_and_completes_after_reruns()
    {
        await using var s = await DashboardScenario.StartAsync(pg, nameof(EnqueueToRerunScenarioTests));
        await s.StepsAsync(async () =>
        {
            var folder = s.GenerateCorpus("lectures", files: 3, seconds: 40);
            var page = s.Page;

            // Enqueue through the form: the preview first, which writes nothing.
            await page.GotoAsync("/enqueue");
            var form = page.Locator("#enqueue-form");
            await FillAsync(form, "path", folder);
            await FillAsync(form, "name", "lectures");
            await FillAsync(form, "shard_minutes", "1");
            await FillAsync(form, "pipeline", "vad");
            await FillAsync(form, "queue", "default");
            await FillAsync(form, "priority", "0");
            await page.Locator("#preview").ClickAsync();
            await Expect(page.Locator("#preview-result")).ToBeVisibleAsync();
            var preview = await PreviewAsync(page);
            Assert.Equal("3", preview.GetValueOrDefault("files"));
            Assert.Equal("0", preview.GetValueOrDefault("failed files"));
            // "2", or "2 of about 1 min": the count leads.
            var shardsText = preview.GetValueOrDefault("shards") ?? "";
            Assert.Matches(@"^\d+", shardsText);
            var shards = int.Parse(Regex.Match(shardsText, @"^\d+").Value, CultureInfo.InvariantCulture);
            Assert.True(shards >= 2, $"the preview plans {shards} shard(s): {string.Join(", ", preview)}");
            Assert.Equal(0L, await s.ScalarAsync("SELECT count(*) FROM corpora"));
            await s.ScreenshotAsync("enqueue-preview");

            // Confirm starts a Hangfire job and lands on its page; the job scans again and writes the corpus.
            await s.SubmitAsync(page.Locator("#confirm"));
            await page.WaitForURLAsync(new Regex(@"/jobs/details/\d+$"));
            await Expect(page.Locator("body")).ToContainTextAsync("Enqueue corpus lectures");
            await s.ExpectJobStateAsync("Succeeded");
            await s.ScreenshotAsync("enqueue-job-succeeded");
            await page.GotoAsync("/enqueue");
            await Expect(page.Locator("#enqueue-jobs [data-field=\"progress\"]").First).ToContainTextAsync("done: corpus 'lectures'");
            await s.ScreenshotAsync("enqueue-jobs");
            await page.GotoAsync("/shards?corpus=lectures");
            await Expect(page.GetByRole(AriaRole.Cell, new() { Name = "queued", Exact = true })).ToHaveCountAsync(shards);
            Assert.Equal(shards, await s.ScalarAsync("SELECT count(*) FROM shards"));
            await s.ScreenshotAsync("enqueued-shards");

            long shardId;
            using (s.TakeAway(folder))
            {
                await page.GotoAsync("/corpora");
                await s.ExpectShardsAsync("lectures", shards, 0, 0, 0, 0);
                await s.RunWorkersAsync();
                // The open overview refreshes itself to the dead shards.
                await Expect(Field(s, "lectures", "shards")).ToHaveTextAsync($"0 / 0 / 0 / {shards} / 0", new() { Timeout = DashboardScenario.WaitMs });
                await s.ScreenshotAsync("overview-dead");

                await page.GotoAsync("/failures");
                var failed = page.Locator("tr[data-shard]");
                await Expect(failed).ToHaveCountAsync(shards);
                await s.ScreenshotAsync("failures");
                shardId = long.Parse((await failed.First.GetAttributeAsync("data-shard"))!, CultureInfo.InvariantCulture);

                await page.GotoAsync($"/shards/{shardId}");
                await Expect(page.Locator("#attempts")).ToContainTextAsync("CorpusStorageUnavailableException");
                await s.ScreenshotAsync("shard-failed");
            }

            // Storage back: re-run this shard from its page, the others from /failures.
            var rerun = page.GetByRole(AriaRole.Button, new() { Name = "re-run", Exact = true });
            await s.SubmitAsync(rerun);
            await Expect(rerun).ToHaveCountAsync(0); // back on the page, the shard is queued: nothing to re-run
            Assert.Equal("queued", await s.Db.ScalarAsync<string>("SELECT state FROM shards WHERE id = @id", ("id", shardId)));
            await page.GotoAsync("/failures");
            await Expect(page.Locator("tr[data-shard]")).ToHaveCountAsync(shards - 1);
            await Expect(page.Locator($"tr[data-shard=\"{shardId}\"]")).ToHaveCountAsync(0);
            await s.ScreenshotAsync("failures-after-one-rerun");
            await s.SubmitAsync(page.Locator("#rerun-all"));
            await Expect(page.Locator("tr[data-shard]")).ToHaveCountAsync(0, new() { Timeout = DashboardScenario.WaitMs });
            Assert.Equal((long)shards, await s.ScalarAsync("SELECT count(*) FROM shards WHERE state = 'queued'"));
            await s.ScreenshotAsync("failures-all-rerun");

            await page.GotoAsync("/corpora");
            await s.MarkPageAsync();
            var run = s.RunWorkersAsync();
            await Expect(Field(s, "lectures", "progress")).ToHaveTextAsync("100.0%", new() { Timeout = DashboardScenario.WaitMs });
            await Expect(Field(s, "lectures", "shards")).ToHaveTextAsync($"0 / 0 / {shards} / 0 / 0", new() { Timeout = DashboardScenario.WaitMs });
            // Nothing left to cancel: the live refresh hides the button too.
            await Expect(s.OverviewRow("lectures").GetByRole(AriaRole.Button, new() { Name = "cancel", Exact = true })).ToBeHiddenAsync(new() { Timeout = DashboardScenario.WaitMs });
            await s.AssertNotReloadedAsync();
            await s.ScreenshotAsync("overview-complete");
            await run;

            // Export the finished corpus from the Export page: a Hangfire job running `workers export`'s
            // writers inside `workers serve`, into its own folder; the page links the JSONL.
            await page.GotoAsync("/export");
            var exportForm = page.Locator("#export-form");
            await exportForm.Locator("[name=\"corpus\"]").FillAsync("lectures");
            await exportForm.Locator("[name=\"audio\"]").SelectOptionAsync("wav");
            await s.SubmitAsync(page.Locator("#export"));
            await page.WaitForURLAsync(new Regex(@"/jobs/details/\d+$"));
            await Expect(page.Locator("body")).ToContainTextAsync("Export corpus lectures");
            await s.ExpectJobStateAsync("Succeeded");
            await s.ScreenshotAsync("export-job-succeeded");
            await page.GotoAsync("/export");
            var segments = await s.ScalarAsync("SELECT count(*) FROM segments");
            Assert.True(segments > 0);
            await Expect(page.Locator("#export-jobs [data-field=\"progress\"]").First).ToContainTextAsync($"done: exported {segments} segments");
            var download = page.Locator("#export-jobs [data-field=\"download\"]").First;
            var href = await download.GetAttributeAsync("href");
            var jsonl = await page.APIRequest.GetAsync(href!);
            Assert.Equal(200, jsonl.Status);
            var lines = (await jsonl.TextAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(segments, lines.Length);
            var jobFolder = Assert.Single(Directory.GetDirectories(s.Exports));
            Assert.Equal(segments, Directory.GetFiles(Path.Combine(jobFolder, "audio"), "*.wav", SearchOption.AllDirectories).Length);
            await s.ScreenshotAsync("export-jobs");

            // The rest of the UI, for the record: Hangfire's home with our shard metrics, its jobs and recurring pages, fleet, audit.
            foreach (var (url, name) in new[] { ("/", "hangfire-home"), ("/jobs/succeeded", "hangfire-succeeded"), ("/recurring", "hangfire-recurring"), ("/fleet", "fleet"), ("/audit", "audit") })
            {
                await page.GotoAsync(url);
                await s.ScreenshotAsync(name);
            }
            await page.GotoAsync("/");
            await Expect(page.Locator("body")).ToContainTextAsync("Succeeded shards");
        });
    }

    private static ILocator Field(DashboardScenario s, string corpus, string field) => s.OverviewRow(corpus).Locator($"[data-field=\"{field}\"]");

    /// <summary>Sets a form field by name, whether the form renders it as an input or a select.</summary>
    private static async Task FillAsync(ILocator form, string name, string value)
    {
        var field = form.Locator($"[name=\"{name}\"]");
        if (await field.EvaluateAsync<string>("e => e.tagName") == "SELECT") await field.SelectOptionAsync(value);
        else await field.FillAsync(value);
    }

    /// <summary>The preview table as label → value (first cell → last cell of each row).</summary>
    private static async Task<Dictionary<string, string>> PreviewAsync(IPage page) =>
        await page.Locator("#preview-result").EvaluateAsync<Dictionary<string, string>>(
            """
            t => Object.fromEntries([...t.querySelectorAll('tr')]
              .map(r => [...r.querySelectorAll('th,td')].map(c => c.textContent.trim()))
              .filter(c => c.length >= 2)
              .map(c => [c[0], c[c.length - 1]]))
            """);
}
