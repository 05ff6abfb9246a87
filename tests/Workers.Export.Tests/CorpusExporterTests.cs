using System.Text.Json;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Postgres.Corpora;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Export.Tests;

/// <summary>
/// The export library's entry point (issue 14): a request in, progress while it runs, a result out,
/// against a real PostgreSQL; what `workers export` and the dashboard's export job both call.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CorpusExporterTests(PostgresFixture pg) : IDisposable
{
    private static readonly WorkerIdentity Worker = new("w", "node");
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-exporter-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A corpus of one long file whose first shard is done with <paramref name="segments"/> segments
    /// (0.5 s each, one a second) and whose second shard is still queued.</summary>
    private static async Task SeedAsync(TestSchema db, string name, int segments)
    {
        var time = new FakeTimeProvider();
        var listing = new CorpusListing("manifest", "/corpus/m.jsonl", "/corpus", [new SourceFile("long.flac", 2 * segments)], []);
        var plan = await EnqueuePlanner.PlanAsync(listing, probe: null, segments);
        await new CorpusWriter(db.DataSource, time).WriteAsync(plan, new EnqueueRequest(name));
        var queue = new ShardQueue(db.DataSource, new QueueOptions(), time);
        var shard = (await queue.ClaimAsync(Worker, ["default"], 1)).Single();
        var rows = Enumerable.Range(0, segments).Select(i => new SegmentRow(0, i + 0.25, i + 0.75)).ToList();
        Assert.True(await queue.CompleteAsync(shard, Worker, rows));
    }

    /// <summary>Records reports synchronously (Progress&lt;T&gt; would post them to the thread pool).</summary>
    private sealed class Reports : IProgress<ExportProgress>
    {
        public List<ExportProgress> All { get; } = [];
        public void Report(ExportProgress value) => All.Add(value);
    }

    [Fact]
    public async Task A_jsonl_export_to_a_file_reports_progress_and_returns_what_it_wrote()
    {
        await using var db = await pg.CreateSchemaAsync();
        const int segments = 2 * CorpusExporter.ProgressEverySegments + 500;
        await SeedAsync(db, "big", segments);
        var output = Path.Combine(_dir, "big.jsonl");
        var warnings = new StringWriter();
        var reports = new Reports();

        var result = await CorpusExporter.RunAsync(db.DataSource, new ExportRequest("big", ExportFormat.Jsonl, output) { Warnings = warnings }, reports);

        Assert.Equal(("big", ExportFormat.Jsonl, output, (long)segments), (result.Corpus, result.Format, result.Destination, result.Segments));
        Assert.Equal(segments * 0.5, result.SpeechSeconds, 6);
        Assert.Equal((1, 1), (result.ShardsByState["succeeded"], result.ShardsByState["queued"]));
        Assert.Null(result.Audio);
        var lines = File.ReadAllLines(output);
        Assert.Equal(segments, lines.Length);
        Assert.Equal("big", JsonDocument.Parse(lines[0]).RootElement.GetProperty("corpus").GetString());
        // Every 10,000 segments, then once at the end.
        Assert.Equal([10_000L, 20_000L, segments], reports.All.Select(r => r.Segments));
        Assert.Equal(segments * 0.5, reports.All[^1].SpeechSeconds, 6);
        Assert.Contains("1 of 2 shards are not finished (queued 1)", warnings.ToString());
    }

    [Fact]
    public async Task A_nemo_export_to_a_stream_names_standard_output_as_its_destination()
    {
        await using var db = await pg.CreateSchemaAsync();
        await SeedAsync(db, "small", 3);
        var stream = new MemoryStream();

        var result = await CorpusExporter.RunAsync(db.DataSource, new ExportRequest("small", ExportFormat.Nemo) { Destination = stream });

        Assert.Equal(("standard output", 3L), (result.Destination, result.Segments));
        var first = JsonDocument.Parse(System.Text.Encoding.UTF8.GetString(stream.ToArray()).Split('\n')[0]).RootElement;
        Assert.Equal("/corpus/long.flac", first.GetProperty("audio_filepath").GetString());
    }

    [Fact]
    public async Task A_cancelled_export_leaves_no_file()
    {
        await using var db = await pg.CreateSchemaAsync();
        await SeedAsync(db, "c", 3 * CorpusExporter.ProgressEverySegments);
        var output = Path.Combine(_dir, "c.jsonl");
        using var cts = new CancellationTokenSource();
        // Cancelled from the first progress report, in the middle of the export.
        var cancelling = new CancelOnReport(cts);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            CorpusExporter.RunAsync(db.DataSource, new ExportRequest("c", ExportFormat.Jsonl, output), cancelling, cts.Token));

        Assert.Equal(1, cancelling.Reports);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(_dir)); // nor its temporary file
    }

    private sealed class CancelOnReport(CancellationTokenSource cts) : IProgress<ExportProgress>
    {
        public int Reports { get; private set; }
        public void Report(ExportProgress value)
        {
            Reports++;
            cts.Cancel();
        }
    }

    [Fact]
    public async Task A_bad_request_lists_every_problem_by_property_before_touching_the_database()
    {
        await using var db = await pg.CreateSchemaAsync();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => CorpusExporter.RunAsync(db.DataSource,
            new ExportRequest("", ExportFormat.Lhotse) { AudioDir = "", AudioFormat = SegmentAudioFormat.Flac }));

        Assert.Contains("Corpus must name a corpus.", e.Message);
        Assert.Contains("Format lhotse needs Output", e.Message);
        Assert.Contains("AudioDir and AudioFormat go with Format jsonl only", e.Message);
        Assert.Contains("AudioDir must name a folder.", e.Message);
        Assert.Empty(new ExportRequest("c", Output: "x.jsonl").Validate());
        Assert.Contains("Output (a file) or Destination (a stream) is needed.", new ExportRequest("c").Validate());
    }

    [Fact]
    public async Task A_pipelines_segment_audio_format_that_is_not_wav_or_flac_names_its_setting()
    {
        await using var db = await pg.CreateSchemaAsync();
        await SeedAsync(db, "p", 2);
        var request = new ExportRequest("p", Output: Path.Combine(_dir, "p.jsonl"))
        {
            PipelineSegmentAudio = new Dictionary<string, PipelineSegmentAudio> { ["vad"] = new(_dir, "mp3") },
        };

        var e = await Assert.ThrowsAsync<ArgumentException>(() => CorpusExporter.RunAsync(db.DataSource, request));

        Assert.Equal("Pipelines:vad:SegmentAudio:Format 'mp3' is not supported: wav or flac.", e.Message);
        Assert.False(File.Exists(request.Output));
    }

    [Fact]
    public async Task An_unknown_corpus_is_named()
    {
        await using var db = await pg.CreateSchemaAsync();
        var e = await Assert.ThrowsAsync<CorpusNotFoundException>(() =>
            CorpusExporter.RunAsync(db.DataSource, new ExportRequest("nope", Output: Path.Combine(_dir, "x.jsonl"))));
        Assert.Contains("nope", e.Message);
    }
}
