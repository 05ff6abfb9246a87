using System.Net;
using System.Text.Json;
using Hangfire;
using Microsoft.Extensions.DependencyInjection;
using Workers.Cli.Commands;
using Workers.Core.Corpora;
using Workers.Dashboard.Export;
using Workers.Dashboard.Tests.Pages;
using Workers.Postgres.Corpora;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Export;

/// <summary>
/// Issue 12: exporting a corpus (JSONL, and segment audio) from the dashboard runs as a Hangfire
/// job through `workers export`'s writers, into its own folder under Dashboard:ExportRoot; the
/// Export page links the result; deleting the job removes what it wrote.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ExportJobTests(PostgresFixture pg) : IDisposable
{
    private readonly string _base = Directory.CreateTempSubdirectory("workers-dash-export-").FullName;
    private string Exports => Path.Combine(_base, "exports");

    public void Dispose() => Directory.Delete(_base, true);

    /// <summary>Corpus 'talks': two real 20 s WAVs in one succeeded shard with three segments, and a second shard still queued.</summary>
    private async Task SeedAsync(TestDashboard d)
    {
        var folder = Path.Combine(_base, "corpus");
        Directory.CreateDirectory(folder);
        foreach (var name in new[] { "a.wav", "b.wav" })
            Workers.Audio.Pcm16Wav.Write(Path.Combine(folder, name), 16000, 16000 * 20, i => (short)(3000 * Math.Sin(2 * Math.PI * 220 * i / 16000)));
        var listing = new CorpusListing("folder", folder, folder, [new SourceFile("a.wav", 20), new SourceFile("b.wav", 20), new SourceFile("c.wav", 30)], []);
        var plan = await EnqueuePlanner.PlanAsync(listing, probe: null, 40);
        await new CorpusWriter(d.Db.DataSource, d.Time).WriteAsync(plan, new EnqueueRequest("talks", MaxAttempts: 3));
        Assert.Equal(3, await d.Db.ScalarAsync<int>("""
            WITH s AS (UPDATE shards SET state = 'succeeded', attempt = 1, processed_seconds = audio_seconds, finished_at = now()
                       WHERE ordinal = 0 RETURNING id, corpus_id),
                 g AS (INSERT INTO segments (corpus_id, shard_id, file_index, start_seconds, end_seconds)
                       SELECT s.corpus_id, s.id, x.file_index, x.a, x.b FROM s, (VALUES (0, 1.0, 2.5), (0, 5.0, 6.0), (1, 0.5, 3.0)) AS x(file_index, a, b)
                       RETURNING 1)
            SELECT count(*)::int FROM g
            """));
    }

    private static Task<TestDashboard> StartAsync(TestSchema db, string? exportRoot, bool registerExport = true, Action<IServiceCollection>? services = null) =>
        TestDashboard.StartAsync(db, new DashboardOptions { ExportRoot = exportRoot ?? "" }, services: s =>
        {
            if (registerExport) s.AddSingleton<ICorpusExport>(new LibraryCorpusExport(db.DataSource));
            services?.Invoke(s);
        });

    private static async Task<string> StartExportAsync(TestDashboard d, string corpus, string audio)
    {
        using var r = await d.PostFormAsync("/export", [new("corpus", corpus), new("audio", audio)]);
        Assert.True(r.StatusCode == HttpStatusCode.SeeOther, $"{(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        return Uri.UnescapeDataString(r.Headers.Location!.OriginalString["/jobs/details/".Length..]);
    }

    [Fact]
    public async Task An_export_job_writes_jsonl_and_segment_audio_into_its_own_folder_and_the_page_links_the_file()
    {
        Directory.CreateDirectory(Exports);
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await StartAsync(db, Exports);
        await SeedAsync(d);

        var jobId = await StartExportAsync(d, "talks", "wav");
        var done = await d.WaitForJobAsync(jobId, "Succeeded");
        Assert.Contains("exported 3 segments", done["Result"]);
        Assert.Contains("1 shards were not finished", done["Result"]);

        var folder = Path.Combine(Exports, "job-" + jobId);
        var lines = File.ReadAllLines(Path.Combine(folder, "segments.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(new[] { "a.wav", "a.wav", "b.wav" }, lines.Select(l => l.GetProperty("file").GetString()));
        Assert.Equal(new[] { 1.0, 5.0, 0.5 }, lines.Select(l => l.GetProperty("start").GetDouble()));
        // Each segment's audio, 16 kHz mono 16-bit: 1.5 s is 48,000 bytes of samples after the 44-byte header.
        var audio = lines.Select(l => Path.Combine(folder, "audio", l.GetProperty("audio").GetString()!)).ToList();
        Assert.All(audio, a => Assert.True(File.Exists(a), a));
        Assert.Equal(44 + 48_000, new FileInfo(audio[0]).Length);

        var page = await d.GetHtmlAsync("/export");
        Assert.Contains($"href=\"/export/{jobId}/segments.jsonl\"", page);
        using var download = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, $"/export/{jobId}/segments.jsonl"));
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal(File.ReadAllText(Path.Combine(folder, "segments.jsonl")), await download.Content.ReadAsStringAsync());
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log WHERE action = 'corpus.export' AND target = 'corpus:talks' AND rows_affected = 3"));

        // Only finished export folders are served, by job id (digits) alone.
        using (var none = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/export/999999/segments.jsonl")))
            Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
        using (var odd = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, "/export/..%2F..%2Fetc/segments.jsonl")))
            Assert.Equal(HttpStatusCode.NotFound, odd.StatusCode);
    }

    [Fact]
    public async Task Deleting_a_running_export_job_stops_it_and_removes_everything_it_wrote()
    {
        Directory.CreateDirectory(Exports);
        var held = new HeldExport();
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await StartAsync(db, Exports, registerExport: false, services: s => s.AddSingleton<ICorpusExport>(held.Around(new LibraryCorpusExport(db.DataSource))));
        await SeedAsync(d);

        var jobId = await StartExportAsync(d, "talks", "wav");
        // The real export has written the JSONL and the audio; the job has not finished yet.
        await held.Written.Task.WaitAsync(TimeSpan.FromSeconds(60));
        var folder = Path.Combine(Exports, "job-" + jobId);
        Assert.True(File.Exists(Path.Combine(folder, "segments.jsonl")));
        await d.WaitForJobAsync(jobId, "Processing");

        using (var delete = await d.PostFormAsync("/jobs/processing/delete", [new("jobs[]", jobId)]))
            Assert.True(delete.IsSuccessStatusCode, $"{(int)delete.StatusCode} {await delete.Content.ReadAsStringAsync()}");
        await d.WaitForJobAsync(jobId, "Deleted");
        await held.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(60));
        // The job removes its folder after its token is cancelled; wait for that, not a fixed time.
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (Directory.Exists(folder)) await Task.Delay(50, limit.Token);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Exports));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM audit_log WHERE action = 'corpus.export'"));
    }

    [Fact]
    public async Task Export_is_off_without_an_export_root_and_an_unknown_corpus_starts_no_job()
    {
        await using (var db = await pg.CreateSchemaAsync())
        await using (var off = await StartAsync(db, exportRoot: null))
        {
            Assert.Contains("id=\"export-off\"", await off.GetHtmlAsync("/export"));
            Assert.Contains("Dashboard__ExportRoot", System.Net.WebUtility.HtmlDecode(await off.GetHtmlAsync("/export")));
            using var r = await off.PostFormAsync("/export", [new("corpus", "talks")]);
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }

        Directory.CreateDirectory(Exports);
        await using var db2 = await pg.CreateSchemaAsync();
        await using var d = await StartAsync(db2, Exports);
        using (var missing = await d.PostFormAsync("/export", [new("corpus", "nope"), new("audio", "wav")]))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            Assert.Contains("id=\"export-error\"", await missing.Content.ReadAsStringAsync());
        }
        using (var badAudio = await d.PostFormAsync("/export", [new("corpus", "talks"), new("audio", "mp3")]))
            Assert.Equal(HttpStatusCode.BadRequest, badAudio.StatusCode);
        var api = d.Services.GetRequiredService<JobStorage>().GetMonitoringApi();
        Assert.Equal(0L, api.GetStatistics().Enqueued + api.GetStatistics().Processing + api.GetStatistics().Succeeded + api.GetStatistics().Failed);

        Assert.Contains("Dashboard:ExportRoot 'exports' is not an absolute path", Assert.Single(new DashboardOptions { ExportRoot = "exports" }.Validate()));
    }

    /// <summary>Runs the real export, then holds the job (signalling that its files are written) until it is cancelled.</summary>
    private sealed class HeldExport
    {
        public TaskCompletionSource Written { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ICorpusExport Around(ICorpusExport inner) => new Held(this, inner);

        private sealed class Held(HeldExport owner, ICorpusExport inner) : ICorpusExport
        {
            public async Task<ExportResult> ExportAsync(ExportRequest request, string folder, IProgress<long> progress, CancellationToken ct)
            {
                var result = await inner.ExportAsync(request, folder, progress, ct);
                owner.Written.TrySetResult();
                try { await Task.Delay(Timeout.Infinite, ct); }
                catch (OperationCanceledException) { owner.Cancelled.TrySetResult(); throw; }
                return result;
            }
        }
    }
}
