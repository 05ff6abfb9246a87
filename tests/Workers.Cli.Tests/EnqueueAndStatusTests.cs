using System.Text.Json;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>The `workers` executable end to end against a real PostgreSQL (issue 2).</summary>
[Collection(PostgresCollection.Name)]
public sealed class EnqueueAndStatusTests(PostgresFixture pg) : IDisposable
{
    private readonly string _corpus = Directory.CreateTempSubdirectory("workers-cli-corpus-").FullName;

    public void Dispose() => Directory.Delete(_corpus, true);

    private static Dictionary<string, string?> Env(TestSchema db) => new() { ["ConnectionStrings__Workers"] = db.ConnectionString };

    private void MakeCorpus()
    {
        TestAudio.WriteWav(Path.Combine(_corpus, "a", "short one.wav"), 12.5);
        TestAudio.WriteWav(Path.Combine(_corpus, "a", "ünïcode.WAV"), 30, rate: 8000);
        TestAudio.WriteWav(Path.Combine(_corpus, "long.wav"), 150); // longer than the 1-minute shards below
        TestAudio.WriteWav(Path.Combine(_corpus, "tmp.wav"), 20);
        TestAudio.Encode(Path.Combine(_corpus, "tmp.wav"), Path.Combine(_corpus, "b", "tone.flac"));
        File.Delete(Path.Combine(_corpus, "tmp.wav"));
        File.WriteAllText(Path.Combine(_corpus, "b", "broken.mp3"), "this is not audio");
        File.WriteAllText(Path.Combine(_corpus, "notes.txt"), "ignored");
    }

    [Fact]
    public async Task Enqueue_a_real_folder_splits_the_long_file_records_the_broken_one_and_status_reports_it()
    {
        await using var db = await pg.CreateSchemaAsync(migrate: false); // the CLI migrates at start-up
        MakeCorpus();

        var r = await WorkersProcess.RunAsync(Env(db), "enqueue", _corpus, "--name", "real", "--shard-minutes", "1", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        using (var doc = JsonDocument.Parse(r.StdOut))
        {
            var j = doc.RootElement;
            Assert.Equal(4, j.GetProperty("files").GetInt32());
            Assert.Equal(212.5, j.GetProperty("audio_seconds").GetDouble(), 1);
            Assert.Equal(5, j.GetProperty("shards").GetInt32()); // 12.5+30+20 packed with 150 s split in 3x50
            var failed = Assert.Single(j.GetProperty("failed_files").EnumerateArray());
            Assert.Equal("b/broken.mp3", failed.GetProperty("file").GetString());
            Assert.Contains("ffprobe", failed.GetProperty("error").GetString());
        }

        Assert.Equal(150.0, await db.ScalarAsync<double>(
            "SELECT sum(i.end_seconds - i.start_seconds) FROM shard_items i JOIN files f USING (corpus_id, file_index) WHERE f.path = 'long.wav'"), 6);
        Assert.Equal(3L, await db.ScalarAsync<long>(
            "SELECT count(DISTINCT i.shard_id) FROM shard_items i JOIN files f USING (corpus_id, file_index) WHERE f.path = 'long.wav'"));

        var s = await WorkersProcess.RunAsync(Env(db), "status", "real", "--json");
        Assert.True(s.ExitCode == 0, s.ToString());
        using var status = JsonDocument.Parse(s.StdOut);
        var st = status.RootElement;
        Assert.Equal("real", st.GetProperty("name").GetString());
        Assert.Equal(4, st.GetProperty("files").GetInt32());
        Assert.Equal(212.5, st.GetProperty("audio_seconds").GetDouble(), 1);
        Assert.Equal(0, st.GetProperty("processed_seconds").GetDouble());
        Assert.Equal(0, st.GetProperty("segments").GetInt64());
        var shards = st.GetProperty("shards");
        Assert.Equal(["queued", "running", "succeeded", "dead", "cancelled"], shards.EnumerateObject().Select(p => p.Name));
        Assert.Equal(5, shards.GetProperty("queued").GetInt32());
        Assert.Equal("b/broken.mp3", Assert.Single(st.GetProperty("failed_files").EnumerateArray()).GetProperty("file").GetString());

        var human = await WorkersProcess.RunAsync(Env(db), "status");
        Assert.Contains("real", human.StdOut);
        Assert.Contains("queued 5", human.StdOut);
    }

    [Fact]
    public async Task Dry_run_prints_the_plan_and_writes_nothing()
    {
        await using var db = await pg.CreateSchemaAsync();
        MakeCorpus();
        var r = await WorkersProcess.RunAsync(Env(db), "enqueue", _corpus, "--name", "dry", "--shard-minutes", "1", "--dry-run");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Dry run (nothing written)", r.StdOut);
        Assert.Contains("shards       5", r.StdOut);
        Assert.Contains("b/broken.mp3", r.StdOut);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora"));
    }

    [Fact]
    public async Task Bad_input_gets_a_clear_error_and_a_non_zero_exit()
    {
        await using var db = await pg.CreateSchemaAsync();
        MakeCorpus();
        var missing = await WorkersProcess.RunAsync(Env(db), "enqueue", Path.Combine(_corpus, "nope"), "--name", "x");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("does not exist", missing.StdErr);

        var manifest = Path.Combine(_corpus, "m.jsonl");
        File.WriteAllText(manifest, "{\"path\": \"a.wav\", \"duration\": 3}\n{\"path\": \"b.wav\"}\n");
        var bad = await WorkersProcess.RunAsync(Env(db), "enqueue", manifest, "--name", "m");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("line 2: missing \"duration\"", bad.StdErr);

        Assert.Equal(0, (await WorkersProcess.RunAsync(Env(db), "enqueue", _corpus, "--name", "dup")).ExitCode);
        var dup = await WorkersProcess.RunAsync(Env(db), "enqueue", _corpus, "--name", "dup");
        Assert.Equal(2, dup.ExitCode);
        Assert.Contains("'dup' already exists", dup.StdErr);

        var shardMinutes = await WorkersProcess.RunAsync(Env(db), "enqueue", _corpus, "--name", "z", "--shard-minutes", "0");
        Assert.Equal(2, shardMinutes.ExitCode);
        Assert.Contains("--shard-minutes", shardMinutes.StdErr);

        var unknown = await WorkersProcess.RunAsync(Env(db), "status", "no-such-corpus");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("No corpus named 'no-such-corpus'", unknown.StdErr);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora"));
    }

    [Fact]
    public async Task A_manifest_is_enqueued_without_opening_its_files()
    {
        await using var db = await pg.CreateSchemaAsync();
        var manifest = Path.Combine(_corpus, "m.jsonl");
        File.WriteAllLines(manifest, Enumerable.Range(0, 500).Select(i => $"{{\"path\": \"does/not/exist/{i}.flac\", \"duration\": {10 + i % 50}}}"));
        var r = await WorkersProcess.RunAsync(Env(db), "enqueue", manifest, "--name", "from-manifest", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = JsonDocument.Parse(r.StdOut);
        Assert.Equal(500, doc.RootElement.GetProperty("files").GetInt32());
        Assert.Empty(doc.RootElement.GetProperty("failed_files").EnumerateArray());
    }

    [Fact]
    public async Task Several_migrate_processes_at_once_apply_each_migration_once()
    {
        await using var db = await pg.CreateSchemaAsync(migrate: false);
        var runs = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => WorkersProcess.RunAsync(Env(db), "migrate")));
        Assert.All(runs, r => Assert.True(r.ExitCode == 0, r.ToString()));
        Assert.Single(runs, r => r.StdOut.Contains("applied"));
        Assert.Equal(3, runs.Count(r => r.StdOut.Contains("up to date")));
        Assert.Equal(await db.ScalarAsync<long>("SELECT count(*) FROM schema_migrations"), (long)Workers.Postgres.Migrations.MigrationRunner.Embedded().Count);
    }

    [Fact]
    public async Task An_unknown_command_or_option_is_a_clear_error_and_exits_non_zero()
    {
        var r = await WorkersProcess.RunAsync(new Dictionary<string, string?>(), "frobnicate");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("frobnicate", r.StdErr);
        var o = await WorkersProcess.RunAsync(new Dictionary<string, string?>(), "enqueue", "/nowhere", "--shard-minuts", "5");
        Assert.NotEqual(0, o.ExitCode);
        Assert.Contains("--shard-minuts", o.StdErr);
    }
}
