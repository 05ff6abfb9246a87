using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Workers.Testing;
using static Microsoft.Playwright.Assertions;

namespace Workers.Browser.Tests;

/// <summary>
/// Issue 12: an enqueue confirmed on the form runs as a Hangfire job; deleting it from Hangfire's
/// job page while it probes stops it, and nothing of the corpus is written.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class EnqueueJobCancelTests(PostgresFixture pg)
{
    /// <summary>Files added after the preview, each needing an ffprobe (a few minutes of probing on 2 cores).</summary>
    private const int SlowFiles = 3000;

    [Fact]
    public async Task Deleting_a_running_enqueue_job_on_its_hangfire_page_stops_it_and_writes_nothing()
    {
        await using var s = await DashboardScenario.StartAsync(pg, nameof(EnqueueJobCancelTests));
        await s.StepsAsync(async () =>
        {
            var folder = s.GenerateCorpus("huge", files: 2, seconds: 20);
            var page = s.Page;
            await page.GotoAsync("/enqueue");
            var form = page.Locator("#enqueue-form");
            await form.Locator("[name=\"path\"]").FillAsync(folder);
            await form.Locator("[name=\"name\"]").FillAsync("huge");
            await page.Locator("#preview").ClickAsync();
            await Expect(page.Locator("#preview-result")).ToBeVisibleAsync();

            // The folder grows after the preview: the job scans again and now has thousands of files to probe.
            for (var i = 0; i < SlowFiles; i++) File.WriteAllText(Path.Combine(folder, $"extra{i:0000}.mp3"), "not audio");
            await s.SubmitAsync(page.Locator("#confirm"));
            await page.WaitForURLAsync(new Regex(@"/jobs/details/\d+$"));
            await s.ExpectJobStateAsync("Processing");
            await s.ScreenshotAsync("enqueue-job-processing");

            // Hangfire's Delete button asks for confirmation in a dialog.
            page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
            await page.GetByRole(AriaRole.Button, new() { Name = "Delete", Exact = true }).ClickAsync();
            await s.ExpectJobStateAsync("Deleted");
            await s.ScreenshotAsync("enqueue-job-deleted");

            Assert.Equal(0L, await s.ScalarAsync("SELECT (SELECT count(*) FROM corpora) + (SELECT count(*) FROM files) + (SELECT count(*) FROM shards)"));
            await page.GotoAsync("/enqueue");
            await Expect(page.Locator("#enqueue-jobs [data-field=\"state\"]").First).ToHaveTextAsync("Deleted");
            await s.ScreenshotAsync("enqueue-jobs-deleted");
        });
    }
}
