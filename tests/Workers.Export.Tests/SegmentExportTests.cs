using System.Text;
using System.Text.Json;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Postgres.Corpora;
using Workers.Export;
using Workers.Postgres.Export;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Export.Tests;

/// <summary>`workers export` at the database level: which segments, in what order, as what JSON (issue: export).</summary>
[Collection(PostgresCollection.Name)]
public sealed class SegmentExportTests(PostgresFixture pg)
{
    private static readonly string[] Default = ["default"];
    private static readonly WorkerIdentity Worker = new("w", "node");

    private static async Task<long> SeedAsync(TestSchema db, TimeProvider time, string name, IReadOnlyList<SourceFile> files, double shardSeconds, int maxAttempts = 5)
    {
        var listing = new CorpusListing("manifest", "/corpus/m.jsonl", "/corpus", files, []);
        var plan = await EnqueuePlanner.PlanAsync(listing, probe: null, shardSeconds);
        return await new CorpusWriter(db.DataSource, time).WriteAsync(plan, new EnqueueRequest(name, MaxAttempts: maxAttempts));
    }

    /// <summary>Segments every 10 s of each item: [t + 1.0004, t + 3.5]; written last to first so the export's order is not the insertion order.</summary>
    private static async Task<List<SegmentRow>> CompleteAsync(ShardQueue queue, ClaimedShard shard)
    {
        var rows = new List<SegmentRow>();
        foreach (var item in await queue.GetItemsAsync(shard.Id))
            for (var t = item.StartSeconds; t + 3.5 <= item.EndSeconds; t += 10)
                rows.Add(new SegmentRow(item.FileIndex, t + 1.0004, t + 3.5));
        rows.Reverse();
        Assert.True(await queue.CompleteAsync(shard, Worker, rows));
        return rows;
    }

    private static async Task<(List<ExportSegment> Segments, string Text, SegmentExport Export)> ExportAsync(TestSchema db, string name)
    {
        var ms = new MemoryStream();
        var list = new List<ExportSegment>();
        var export = await SegmentExport.OpenAsync(db.DataSource, name);
        await using (export)
        {
            using var writer = new SegmentJsonlWriter(ms, name, "memory");
            await foreach (var s in export.ReadAllAsync())
            {
                list.Add(s);
                writer.Write(s);
            }
            writer.Flush();
            Assert.Equal(list.Count, writer.Lines);
        }
        return (list, Encoding.UTF8.GetString(ms.ToArray()), export);
    }

    private static List<JsonElement> Lines(string text)
    {
        Assert.True(text.Length == 0 || text.EndsWith('\n'), "every line ends with a newline");
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
    }

    [Fact]
    public async Task Speech_running_across_a_shard_cut_is_exported_as_one_segment()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await SeedAsync(db, time, "cut", [new SourceFile("long.wav", 150)], shardSeconds: 60); // items [0,50) [50,100) [100,150)
        var queue = new ShardQueue(db.DataSource, new QueueOptions(), time);
        var shards = (await queue.ClaimAsync(Worker, Default, 10)).OrderBy(s => s.Id).ToList();
        Assert.Equal(3, shards.Count);
        Assert.True(await queue.CompleteAsync(shards[0], Worker, [new SegmentRow(0, 10, 20), new SegmentRow(0, 40, 50)]));
        Assert.True(await queue.CompleteAsync(shards[1], Worker, [new SegmentRow(0, 50, 55), new SegmentRow(0, 60, 70), new SegmentRow(0, 95, 100)]));
        Assert.True(await queue.CompleteAsync(shards[2], Worker, [new SegmentRow(0, 100, 110), new SegmentRow(0, 120, 130)]));

        var (segments, _, _) = await ExportAsync(db, "cut");

        Assert.Equal([(10.0, 20.0), (40.0, 55.0), (60.0, 70.0), (95.0, 110.0), (120.0, 130.0)], segments.Select(s => (s.StartSeconds, s.EndSeconds)));
        Assert.Equal(shards[0].Id, segments[1].ShardId);
    }

    [Fact]
    public async Task Segments_that_merely_touch_inside_a_shard_are_not_joined()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await SeedAsync(db, time, "touch", [new SourceFile("a.wav", 50)], shardSeconds: 60);
        var queue = new ShardQueue(db.DataSource, new QueueOptions(), time);
        var shard = Assert.Single(await queue.ClaimAsync(Worker, Default, 10));
        Assert.True(await queue.CompleteAsync(shard, Worker, [new SegmentRow(0, 10, 20), new SegmentRow(0, 20, 30)])); // a max-speech split
        var (segments, _, _) = await ExportAsync(db, "touch");
        Assert.Equal(2, segments.Count);
    }

    [Fact]
    public async Task Export_has_the_segments_of_succeeded_shards_only_in_path_then_start_order_with_every_field()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        // Listed out of order; ordinal path order is "B.wav" < "a-b.wav" < "a/z.wav" < "b/2.wav" (a collation
        // such as en_US would put "a/z.wav" or "B.wav" elsewhere). 100 s of b/2.wav is split over two shards.
        var files = new List<SourceFile> { new("b/2.wav", 100), new("a/z.wav", 30), new("B.wav", 50.12345), new("a-b.wav", 20), new("c.wav", 40), new("d.wav", 40) };
        await SeedAsync(db, time, "c", files, shardSeconds: 60, maxAttempts: 1);
        var queue = new ShardQueue(db.DataSource, new QueueOptions { MaxAttempts = 1 }, time);
        var claimed = await queue.ClaimAsync(Worker, Default, 100);
        Assert.True(claimed.Count >= 5, $"expected at least 5 shards, got {claimed.Count}");

        // The last two shards (c.wav and d.wav) do not succeed: one dies, one is given back to the queue.
        var paths = new Dictionary<int, string>();
        foreach (var s in claimed)
            foreach (var item in await queue.GetItemsAsync(s.Id)) paths[item.FileIndex] = item.Path;
        var expected = new List<(string File, double Start, double End, long Shard)>();
        foreach (var s in claimed.Take(claimed.Count - 2))
            expected.AddRange((await CompleteAsync(queue, s)).Select(r => (paths[r.FileIndex], r.StartSeconds, r.EndSeconds, s.Id)));
        var dead = claimed[^2];
        var queued = claimed[^1];
        Assert.Equal(FailOutcome.Dead, await queue.FailAsync(dead, Worker, new ShardFailure("E", "boom")));
        Assert.True(await queue.ReleaseAsync(queued, Worker, "drain"));
        // Stale rows of shards that are not succeeded (as a crash between states could leave) must not leak out.
        await db.ScalarAsync<int>(
            "INSERT INTO segments SELECT corpus_id, id, 0, 0.5, 0.9 FROM shards WHERE id = ANY(@ids) RETURNING 1",
            ("ids", new[] { dead.Id, queued.Id }));

        var (segments, text, export) = await ExportAsync(db, "c");

        expected.Sort((a, b) => string.CompareOrdinal(a.File, b.File) is var c && c != 0 ? c : a.Start.CompareTo(b.Start));
        Assert.Equal(expected.Count, segments.Count);
        Assert.Equal(expected, segments.Select(s => (s.File, s.StartSeconds, s.EndSeconds, s.ShardId)));
        Assert.Equal(["B.wav", "a-b.wav", "a/z.wav", "b/2.wav"], segments.Select(s => s.File).Distinct());
        Assert.Equal(2, segments.Where(s => s.File == "b/2.wav").Select(s => s.ShardId).Distinct().Count());

        Assert.Equal(claimed.Count, export.TotalShards);
        Assert.Equal(claimed.Count - 2, export.SucceededShards);
        Assert.Equal(1, export.ShardsByState["dead"]);
        Assert.Equal(1, export.ShardsByState["queued"]);

        var lines = Lines(text);
        Assert.Equal(segments.Count, lines.Count);
        var first = segments[0];
        Assert.Equal(
            $"{{\"corpus\":\"c\",\"file\":\"B.wav\",\"start\":1,\"end\":3.5,\"duration\":2.5,\"shard\":{first.ShardId},\"file_duration\":50.123}}",
            text[..text.IndexOf('\n')]);
        for (var i = 0; i < lines.Count; i++)
        {
            var l = lines[i];
            Assert.Equal(["corpus", "file", "start", "end", "duration", "shard", "file_duration"], l.EnumerateObject().Select(p => p.Name));
            Assert.Equal(expected[i].File, l.GetProperty("file").GetString());
            Assert.Equal(Math.Round(expected[i].Start, 3), l.GetProperty("start").GetDouble());
            Assert.Equal(Math.Round(expected[i].End, 3), l.GetProperty("end").GetDouble());
            Assert.Equal(l.GetProperty("end").GetDouble() - l.GetProperty("start").GetDouble(), l.GetProperty("duration").GetDouble(), 9);
            Assert.Equal(expected[i].Shard, l.GetProperty("shard").GetInt64());
        }
    }

    [Fact]
    public async Task Hostile_corpus_names_and_paths_round_trip_through_json_one_line_per_segment()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        var name = "x\"); DROP TABLE segments; -- ünï\\cödé 🎙";
        string[] paths =
        [
            "o'brien \"quoted\"\\back.wav", "ünï cödé/日本語.wav", "new\nline.wav", "tab\there\r.wav", "emoji 🎙.flac",
            "line\u2028separator.wav", "/abs/path.wav", "../up/one.wav", "nul-less \u0001 control.wav", "<script>&amp;.wav",
            // Ordinal (UTF-16) order puts the emoji (a surrogate pair, 0xD83C...) before U+FF21; byte or
            // code point order would not, so the export must follow file_index, not sort paths itself.
            "\uFF21 fullwidth.wav", "🎙.wav",
        ];
        await SeedAsync(db, time, name, paths.Select(p => new SourceFile(p, 20)).ToList(), shardSeconds: 60);
        var queue = new ShardQueue(db.DataSource, new QueueOptions(), time);
        foreach (var s in await queue.ClaimAsync(Worker, Default, 100)) await CompleteAsync(queue, s);

        var (segments, text, _) = await ExportAsync(db, name);

        Assert.Equal(paths.Length * 2, segments.Count); // segments at 1 s and 11 s of each 20-s file
        var lines = Lines(text);
        Assert.Equal(segments.Count, lines.Count);
        Assert.All(lines, l => Assert.Equal(name, l.GetProperty("corpus").GetString()));
        Assert.Equal(paths.Order(StringComparer.Ordinal), lines.Select(l => l.GetProperty("file").GetString()!).Distinct());
        Assert.Contains("ünï cödé/日本語.wav", text); // written as UTF-8, not \u escapes
        Assert.Contains("\"file\":\"new\\nline.wav\"", text);
    }

    [Fact]
    public async Task Export_streams_across_many_cursor_batches_from_one_snapshot()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        // 3 files of 40,000 s: 12,000 segments in all, several FETCH batches, split over shards of 10,000 s.
        await SeedAsync(db, time, "big", [new("x.wav", 40_000), new("y.wav", 40_000), new("z.wav", 40_000)], shardSeconds: 10_000);
        var queue = new ShardQueue(db.DataSource, new QueueOptions(), time);
        var claimed = await queue.ClaimAsync(Worker, Default, 100);
        Assert.Equal(12, claimed.Count);
        var written = 0;
        foreach (var s in claimed.Skip(1)) written += (await CompleteAsync(queue, s)).Count;

        await using var export = await SegmentExport.OpenAsync(db.DataSource, "big");
        // Completed after the export opened: not in it, and the export's counts still say running.
        var late = (await CompleteAsync(queue, claimed[0])).Count;
        Assert.True(late > 0);

        var n = 0;
        ExportSegment? previous = null;
        await foreach (var s in export.ReadAllAsync())
        {
            if (previous is { } p)
                Assert.True(string.CompareOrdinal(p.File, s.File) < 0 || (p.File == s.File && p.StartSeconds < s.StartSeconds), $"{p} before {s}");
            Assert.NotEqual(claimed[0].Id, s.ShardId);
            previous = s;
            n++;
        }
        Assert.Equal(written, n);
        Assert.True(n > 10_000);
        Assert.Equal(1, export.ShardsByState["running"]);
        Assert.Equal(11, export.SucceededShards);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => { await foreach (var _ in export.ReadAllAsync()) { } });

        await using var after = await SegmentExport.OpenAsync(db.DataSource, "big");
        Assert.Equal(written + late, await after.ReadAllAsync().CountAsync());

        // A reader that stops early (the next batch already on its way) ends cleanly, and so does one cancelled.
        await using (var early = await SegmentExport.OpenAsync(db.DataSource, "big"))
            Assert.Equal(10, await early.ReadAllAsync().Take(10).CountAsync());
        using var cts = new CancellationTokenSource();
        await using (var cancelled = await SegmentExport.OpenAsync(db.DataSource, "big"))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            {
                await foreach (var s in cancelled.ReadAllAsync(cts.Token))
                    if (s.StartSeconds > 5000) cts.Cancel();
            });
        await using var again = await SegmentExport.OpenAsync(db.DataSource, "big");
        Assert.Equal(written + late, await again.ReadAllAsync().CountAsync());
    }

    [Fact]
    public async Task An_unknown_corpus_is_a_clear_error()
    {
        await using var db = await pg.CreateSchemaAsync();
        var e = await Assert.ThrowsAsync<CorpusNotFoundException>(() => SegmentExport.OpenAsync(db.DataSource, "nope"));
        Assert.Contains("No corpus named 'nope'", e.Message);
    }

    [Fact]
    public async Task A_corpus_with_nothing_done_exports_no_lines_and_reports_its_shards()
    {
        await using var db = await pg.CreateSchemaAsync();
        await SeedAsync(db, new FakeTimeProvider(), "fresh", [.. Enumerable.Range(0, 3).Select(i => new SourceFile($"f{i:000000}.wav", 60))], 60);
        var (segments, text, export) = await ExportAsync(db, "fresh");
        Assert.Empty(segments);
        Assert.Equal("", text);
        Assert.Equal((3, 0, 3), (export.TotalShards, export.SucceededShards, export.ShardsByState["queued"]));
    }
}
