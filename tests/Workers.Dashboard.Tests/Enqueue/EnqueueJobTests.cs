using System.Net;
using Hangfire;
using Microsoft.Extensions.DependencyInjection;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Dashboard.Tests.Pages;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Enqueue;

/// <summary>
/// Issue 12: a confirmed enqueue from the dashboard runs as a Hangfire background job, which a
/// delete cancels (nothing written) and which lands on Hangfire's Failed page when it cannot be done.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class EnqueueJobTests(PostgresFixture pg) : IDisposable
{
    private readonly string _base = Directory.CreateTempSubdirectory("workers-dash-enqueue-job-").FullName;
    private string Root => Path.Combine(_base, "corpora");

    public void Dispose() => Directory.Delete(_base, true);

    /// <summary>corpora/set: one WAV and one mp3 (the mp3 goes through the probe, which the tests hold).</summary>
    private CorpusOptions MakeFolders()
    {
        var wav = Path.Combine(Root, "set", "a.wav");
        Directory.CreateDirectory(Path.GetDirectoryName(wav)!);
        Workers.Audio.Pcm16Wav.Write(wav, 16000, 16000 * 20, i => (short)(3000 * Math.Sin(2 * Math.PI * 220 * i / 16000)));
        File.WriteAllText(Path.Combine(Root, "set", "b.mp3"), "not audio");
        return new CorpusOptions { AllowedRoots = [Root] };
    }

    private static async Task<long> Written(TestSchema db) =>
        await db.ScalarAsync<long>("SELECT (SELECT count(*) FROM corpora) + (SELECT count(*) FROM files) + (SELECT count(*) FROM shards) + (SELECT count(*) FROM audit_log WHERE action = 'corpus.enqueue')");

    private static async Task<string> ConfirmAsync(TestDashboard d, string name)
    {
        using var r = await d.PostFormAsync("/enqueue", [new("path", "set"), new("name", name), new("shard_minutes", "1"), new("confirm", "1")]);
        Assert.True(r.StatusCode == HttpStatusCode.SeeOther, $"{(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        return Uri.UnescapeDataString(r.Headers.Location!.OriginalString["/jobs/details/".Length..]);
    }

    [Fact]
    public async Task Deleting_a_running_enqueue_job_from_hangfires_page_cancels_it_and_writes_nothing()
    {
        var corpus = MakeFolders();
        var probe = new HeldProbe();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus, services: s => s.AddSingleton<IDurationProbe>(probe));

        var jobId = await ConfirmAsync(d, "stopped");
        await probe.Entered.WaitAsync();
        await d.WaitForJobAsync(jobId, "Processing");
        Assert.Contains("scanning and probing", await d.GetHtmlAsync("/enqueue"));

        // Hangfire's own "Delete" button on the Processing page: a form POST with the antiforgery token.
        using (var delete = await d.PostFormAsync("/jobs/processing/delete", [new("jobs[]", jobId)]))
            Assert.True(delete.IsSuccessStatusCode, $"{(int)delete.StatusCode} {await delete.Content.ReadAsStringAsync()}");
        await d.WaitForJobAsync(jobId, "Deleted");
        // The job's token was cancelled (the probe saw it), and nothing of the corpus was written.
        await probe.Cancelled.WaitAsync();
        Assert.Equal(0L, await Written(db));
    }

    [Fact]
    public async Task A_job_that_cannot_enqueue_fails_at_once_onto_hangfires_failed_page_with_the_reason()
    {
        var corpus = MakeFolders();
        var probe = new HeldProbe();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus, services: s => s.AddSingleton<IDurationProbe>(probe));

        var jobId = await ConfirmAsync(d, "twice");
        await probe.Entered.WaitAsync();
        // Someone takes the name while the job scans (the CLI, another job): the write is refused.
        await d.SeedCorpusAsync(1, "twice");
        probe.Release.SetResult();
        var failed = await d.WaitForJobAsync(jobId, "Failed");
        Assert.Contains("EnqueueRejectedException", failed["ExceptionType"]);
        Assert.Contains("A corpus named 'twice' already exists", failed["ExceptionMessage"]);
        // Not retried: a taken name stays taken.
        using (var c = d.Services.GetRequiredService<JobStorage>().GetConnection())
            Assert.Null(c.GetJobParameter(jobId, "RetryCount"));
        var failedPage = await d.GetHtmlAsync("/jobs/failed");
        Assert.Contains("EnqueueRejectedException", failedPage);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora"));
    }

    [Fact]
    public async Task A_confirm_with_a_bad_path_or_taken_name_is_answered_at_once_and_starts_no_job()
    {
        var corpus = MakeFolders();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus);
        await d.SeedCorpusAsync(1, "taken");

        using (var r = await d.PostFormAsync("/enqueue", [new("path", "../etc"), new("name", "x"), new("confirm", "1")]))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Contains("id=\"enqueue-error\"", await r.Content.ReadAsStringAsync());
        }
        using (var r = await d.PostFormAsync("/enqueue", [new("path", "set"), new("name", "taken"), new("confirm", "1")]))
            Assert.Equal(HttpStatusCode.Conflict, r.StatusCode);
        var api = d.Services.GetRequiredService<JobStorage>().GetMonitoringApi();
        Assert.Equal(0L, api.GetStatistics().Enqueued + api.GetStatistics().Processing + api.GetStatistics().Succeeded + api.GetStatistics().Failed);
    }

    /// <summary>A probe that signals when the scan reaches it and holds until released (then every file is 20 s long) or cancelled.</summary>
    private sealed class HeldProbe : IDurationProbe
    {
        public TestSignal Entered { get; } = new("probe entered");
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TestSignal Cancelled { get; } = new("probe cancelled");

        public async Task<IReadOnlyList<(double? Duration, string? Error)>> ProbeManyAsync(IReadOnlyList<string> fullPaths, CancellationToken ct)
        {
            Entered.Signal();
            try
            {
                await Release.Task.WaitAsync(ct);
            }
            catch (OperationCanceledException)
            {
                Cancelled.Signal();
                throw;
            }
            return [.. fullPaths.Select(_ => ((double?)20.0, (string?)null))];
        }
    }
}
