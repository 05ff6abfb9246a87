using Workers.Core.Corpora;
using Workers.Postgres.Corpora;
using Workers.Testing;

namespace Workers.Postgres.Tests.Corpora;

[Collection(PostgresCollection.Name)]
public sealed class CorpusWriterTests(PostgresFixture pg)
{
    private sealed class TableProbe(Dictionary<string, double?> durations) : IDurationProbe
    {
        public Task<IReadOnlyList<(double? Duration, string? Error)>> ProbeManyAsync(IReadOnlyList<string> fullPaths, CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<(double?, string?)>>(fullPaths
                .Select(p => durations[Path.GetFileName(p)] is { } d ? ((double?)d, (string?)null) : (null, "ffprobe: Invalid data found when processing input"))
                .ToList());
    }

    [Fact]
    public async Task Enqueue_writes_every_second_of_every_file_into_exactly_one_shard_item_and_keeps_failed_files()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        var files = new List<SourceFile> { new("a.wav", null), new("b.flac", null), new("long.mp3", null), new("bad.ogg", null) };
        var listing = new CorpusListing("folder", "/data/c", "/data/c", files, [new SkippedEntry("out.wav", "symlink points outside the corpus folder")]);
        var probe = new TableProbe(new() { ["a.wav"] = 100, ["b.flac"] = 250.5, ["long.mp3"] = 1000, ["bad.ogg"] = null });
        var plan = await EnqueuePlanner.PlanAsync(listing, probe, targetSeconds: 300);

        var id = await new CorpusWriter(db.DataSource, time).WriteAsync(plan, new EnqueueRequest("corpus-1"));

        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM files WHERE corpus_id = @id AND error IS NULL", ("id", id)));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM files WHERE corpus_id = @id AND error IS NOT NULL", ("id", id)));
        Assert.Equal(1350.5, await db.ScalarAsync<double>("SELECT sum(end_seconds - start_seconds) FROM shard_items"), 6);
        Assert.Equal(1350.5, await db.ScalarAsync<double>("SELECT sum(audio_seconds) FROM shards"), 6);
        Assert.Equal(1000.0, await db.ScalarAsync<double>(
            "SELECT sum(i.end_seconds - i.start_seconds) FROM shard_items i JOIN files f USING (corpus_id, file_index) WHERE f.path = 'long.mp3'"), 6);
        Assert.True(await db.ScalarAsync<long>("SELECT count(DISTINCT shard_id) FROM shard_items i JOIN files f USING (corpus_id, file_index) WHERE f.path = 'long.mp3'") >= 4);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE audio_seconds > 300 + 1e-9"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state <> 'queued'"));

        var status = await new CorpusStatusReader(db.DataSource).GetStatusAsync("corpus-1");
        Assert.Equal(["queued", "running", "succeeded", "dead", "cancelled"], status.ShardsByState.Keys);
        Assert.Equal(plan.ShardCount, status.ShardsByState["queued"]);
        Assert.Equal(["bad.ogg", "out.wav"], status.FailedFiles.Select(f => f.File));
        Assert.Contains("ffprobe", status.FailedFiles[0].Error);
    }

    [Fact]
    public async Task An_existing_name_is_a_clear_error_and_writes_nothing()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        await Seed.CorpusAsync(db, time, 3, name: "taken");
        var e = await Assert.ThrowsAsync<CorpusExistsException>(() => Seed.CorpusAsync(db, time, 5, name: "taken"));
        Assert.Contains("'taken' already exists", e.Message);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM shards"));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM files"));
    }

    [Fact]
    public async Task Hostile_names_and_paths_are_stored_verbatim()
    {
        await using var db = await pg.CreateSchemaAsync();
        var name = "x'); DROP TABLE shards; --";
        var files = new List<SourceFile> { new("o'brien \"quoted\"; DROP/ünï cödé.wav", 10) };
        var plan = await EnqueuePlanner.PlanAsync(new CorpusListing("manifest", "/m.jsonl", "/", files, []), new TableProbe([]), 60);
        await new CorpusWriter(db.DataSource, new FakeTimeProvider()).WriteAsync(plan, new EnqueueRequest(name));
        Assert.Equal(name, await db.ScalarAsync<string>("SELECT name FROM corpora"));
        Assert.Equal(files[0].Path, await db.ScalarAsync<string>("SELECT path FROM files"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM shards"));
    }

    [Fact]
    public async Task Rerun_of_failed_shards_is_set_based_and_keeps_attempt_history()
    {
        await using var db = await pg.CreateSchemaAsync();
        var time = new FakeTimeProvider();
        var corpus = await Seed.CorpusAsync(db, time, 4, maxAttempts: 1);
        var queue = new Workers.Postgres.Queue.ShardQueue(db.DataSource, new Workers.Core.Options.QueueOptions(), time);
        var w = new Workers.Postgres.Queue.WorkerIdentity("w", "n");
        foreach (var s in await queue.ClaimAsync(w, ["default"], 3))
            await queue.FailAsync(s, w, new Workers.Postgres.Queue.ShardFailure("E", "bad"));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'dead'"));

        var rerun = await new CorpusAdmin(db.DataSource, time).RerunFailedAsync(corpus, budget: 2,
            new Workers.Postgres.Dashboard.AuditRecord(new Workers.Postgres.Dashboard.Actor("t", null), "corpus.rerun_failed", "corpus:c"));
        Assert.Equal(3, rerun.Count);
        var again = await queue.ClaimAsync(w, ["default"], 10);
        Assert.Equal(4, again.Count);
        Assert.Equal(3, again.Count(s => s.Attempt == 2 && s.MaxAttempts == 3));
        Assert.Equal(7L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts"));

        Assert.Equal(4, await new CorpusAdmin(db.DataSource, time).CancelAsync(corpus,
            new Workers.Postgres.Dashboard.AuditRecord(new Workers.Postgres.Dashboard.Actor("t", null), "corpus.cancel", "corpus:c")));
        Assert.False(await queue.CompleteAsync(again[0], w, []));
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'cancelled'"));
    }
}
