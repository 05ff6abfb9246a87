using Workers.Core.Signals;
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
    public async Task A_transient_database_error_is_retried_and_the_retry_enqueues_the_corpus_once()
    {
        var corpus = MakeFolders();
        var probe = new HeldProbe();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus, services: s => s.AddSingleton<IDurationProbe>(probe));

        var jobId = await ConfirmAsync(d, "flaky");
        await probe.Entered.WaitAsync();
        // The write will wait on this lock; its backend is then terminated, as a server restart or a
        // failover would (57P01 admin_shutdown): a transient error.
        await using (var conn = await db.DataSource.OpenConnectionAsync())
        await using (var tx = await conn.BeginTransactionAsync())
        {
            await using (var lockCmd = new Npgsql.NpgsqlCommand("LOCK TABLE corpora IN ACCESS EXCLUSIVE MODE", conn, tx))
                await lockCmd.ExecuteNonQueryAsync();
            probe.Release.SetResult();
            await using var waiting = new Npgsql.NpgsqlCommand(
                "SELECT pid FROM pg_locks WHERE NOT granted AND relation = 'corpora'::regclass LIMIT 1", conn, tx);
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            int? pid = null;
            while (pid is null)
            {
                pid = await waiting.ExecuteScalarAsync(limit.Token) as int?;
                if (pid is null) await Task.Delay(50, limit.Token);
            }
            await using var kill = new Npgsql.NpgsqlCommand("SELECT pg_terminate_backend(@pid)", conn, tx);
            kill.Parameters.AddWithValue("pid", pid.Value);
            await kill.ExecuteScalarAsync();
            await tx.RollbackAsync();
        }

        // Hangfire scheduled a retry (AutomaticRetry) instead of failing the job; nothing was written.
        var scheduled = await d.WaitForJobAsync(jobId, "Scheduled");
        Assert.Equal(0L, await Written(db));
        using (var c = d.Services.GetRequiredService<JobStorage>().GetConnection())
        {
            Assert.Contains("The database failed while enqueueing 'flaky'", c.GetStateData(jobId).Reason);
            Assert.Equal("1", c.GetJobParameter(jobId, "RetryCount"));
        }
        Assert.True(scheduled.ContainsKey("EnqueueAt"));

        // Hangfire's "Enqueue now" on its Scheduled page instead of waiting 15 s: the retry writes the corpus.
        using (var now = await d.PostFormAsync("/jobs/scheduled/enqueue", [new("jobs[]", jobId)]))
            Assert.True(now.IsSuccessStatusCode, $"{(int)now.StatusCode} {await now.Content.ReadAsStringAsync()}");
        await d.WaitForJobAsync(jobId, "Succeeded");
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora WHERE name = 'flaky'"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log WHERE action = 'corpus.enqueue'"));
    }

    [Fact]
    public async Task A_database_error_that_is_not_transient_fails_the_job_at_once_without_retries()
    {
        var corpus = MakeFolders();
        var probe = new HeldProbe();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus, services: s => s.AddSingleton<IDurationProbe>(probe));

        var jobId = await ConfirmAsync(d, "refused");
        await probe.Entered.WaitAsync();
        // A constraint the write breaks (23514 check_violation): retrying would break it again.
        await using (var cmd = db.DataSource.CreateCommand("ALTER TABLE corpora ADD CONSTRAINT test_refuses_corpora CHECK (false) NOT VALID"))
            await cmd.ExecuteNonQueryAsync();
        probe.Release.SetResult();

        var failed = await d.WaitForJobAsync(jobId, "Failed");
        Assert.Contains("PostgresException", failed["ExceptionType"]);
        Assert.Contains("test_refuses_corpora", failed["ExceptionMessage"]);
        using (var c = d.Services.GetRequiredService<JobStorage>().GetConnection())
            Assert.Null(c.GetJobParameter(jobId, "RetryCount"));
        Assert.Equal(0L, await Written(db));
    }

    [Fact]
    public async Task A_jsonl_manifest_under_the_roots_enqueues_through_the_job_without_probing()
    {
        var corpus = MakeFolders();
        var probe = new HeldProbe(); // never released: a manifest's durations are trusted, nothing is probed
        var manifest = Path.Combine(Root, "lists", "m.jsonl");
        Directory.CreateDirectory(Path.GetDirectoryName(manifest)!);
        File.WriteAllLines(manifest, ["{\"path\": \"a/1.flac\", \"duration\": 30}", "{\"path\": \"b/2.flac\", \"duration\": 90}"]);
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus, services: s => s.AddSingleton<IDurationProbe>(probe));

        using (var preview = await d.PostFormAsync("/enqueue", [new("path", "lists/m.jsonl")]))
        {
            var html = await preview.Content.ReadAsStringAsync();
            Assert.True(preview.StatusCode == HttpStatusCode.OK, html);
            Assert.Contains("<td data-field=\"files\">2</td>", html);
        }
        using var r = await d.PostFormAsync("/enqueue", [new("path", "lists/m.jsonl"), new("shard_minutes", "1"), new("confirm", "1")]);
        Assert.Equal(HttpStatusCode.SeeOther, r.StatusCode);
        var jobId = Uri.UnescapeDataString(r.Headers.Location!.OriginalString["/jobs/details/".Length..]);
        await d.WaitForJobAsync(jobId, "Succeeded");
        Assert.False(probe.Entered.TryTake()); // never signalled: nothing was probed
        Assert.Equal("manifest 2 120", await db.ScalarAsync<string>("SELECT source_kind || ' ' || files || ' ' || audio_seconds FROM corpora WHERE name = 'm'"));
        Assert.Equal(new[] { "a/1.flac", "b/2.flac" }, (await db.ScalarAsync<string[]>("SELECT array_agg(path ORDER BY file_index) FROM files")));
    }

    [Fact]
    public async Task A_manifest_listing_files_outside_its_folder_or_reached_through_a_symlink_is_refused_before_anything_is_written()
    {
        var corpus = MakeFolders();
        var lists = Path.Combine(Root, "lists");
        Directory.CreateDirectory(lists);
        File.WriteAllLines(Path.Combine(lists, "escapes.jsonl"), ["{\"path\": \"ok.flac\", \"duration\": 30}", "{\"path\": \"../../secret.flac\", \"duration\": 30}"]);
        File.WriteAllLines(Path.Combine(_base, "outside.jsonl"), ["{\"path\": \"x.flac\", \"duration\": 30}"]);
        File.CreateSymbolicLink(Path.Combine(lists, "link.jsonl"), Path.Combine(_base, "outside.jsonl"));
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db, corpus: corpus);

        foreach (var (path, expected) in new[]
                 {
                     ("lists/escapes.jsonl", "lists files outside its folder"),
                     ("lists/link.jsonl", "is a symlink"),
                     ("lists/missing.jsonl", "does not exist"),
                     (Path.Combine(_base, "outside.jsonl"), "outside the allowed corpus roots"),
                 })
        {
            using var r = await d.PostFormAsync("/enqueue", [new("path", path), new("confirm", path == "lists/escapes.jsonl" ? "0" : "1")]);
            var html = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.BadRequest, $"{path}: {(int)r.StatusCode} {html}");
            Assert.Contains(expected, System.Net.WebUtility.HtmlDecode(html));
        }
        Assert.Equal(0L, await Written(db));
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
