using System.Text.Json;
using Workers.Audio.Synthesis;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>`workers run` end to end: real worker processes, real ONNX Runtime, real PostgreSQL (issue 3).</summary>
[Collection(PostgresCollection.Name)]
public sealed class RunCommandTests(PostgresFixture pg) : IDisposable
{
    private readonly string _corpus = Directory.CreateTempSubdirectory("workers-run-corpus-").FullName;

    public void Dispose() => Directory.Delete(_corpus, true);

    [Fact]
    public async Task Two_cpu_workers_process_a_corpus_to_idle_with_every_shard_succeeding_once()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var gen = new SpeechCorpusGenerator(Path.Combine(_corpus, ".espeak"));
        var rng = new Random(11);
        gen.WriteWav(Path.Combine(_corpus, "long.wav"), 150, rng); // split across 1-minute shards
        for (var i = 0; i < 5; i++) gen.WriteWav(Path.Combine(_corpus, "spk", $"u{i}.wav"), 15 + 5 * i, rng);
        SpeechCorpusGenerator.Encode(Path.Combine(_corpus, "spk", "u4.wav"), Path.Combine(_corpus, "spk", "u4.flac"), 44100);
        File.Delete(Path.Combine(_corpus, "spk", "u4.wav"));
        File.WriteAllText(Path.Combine(_corpus, "spk", "broken.wav"), "RIFF but not really");
        Directory.Delete(Path.Combine(_corpus, ".espeak"), true);

        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Workers"] = db.ConnectionString,
            ["Models__Root"] = Models.Root,
            ["Fleet__TempRoot"] = Path.Combine(_corpus, ".tmp"),
            ["Queue__PollSeconds"] = "1",
        };
        var enq = await WorkersProcess.RunAsync(env, "enqueue", _corpus, "--name", "run", "--shard-minutes", "1");
        Assert.True(enq.ExitCode == 0, enq.ToString());

        var run = await WorkersProcess.RunAsync(env, "run", "--cpu-workers", "2", "--until-idle");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("provider CPUExecutionProvider", run.StdErr);
        Assert.Contains("falling back to CPU", run.StdErr); // auto on a machine without CUDA says why

        var status = JsonDocument.Parse((await WorkersProcess.RunAsync(env, "status", "run", "--json")).StdOut).RootElement;
        var shards = status.GetProperty("shards");
        var total = await db.ScalarAsync<long>("SELECT count(*) FROM shards");
        Assert.Equal(total, shards.GetProperty("succeeded").GetInt32());
        Assert.True(status.GetProperty("segments").GetInt64() > 20);
        Assert.Equal(status.GetProperty("audio_seconds").GetDouble(), status.GetProperty("processed_seconds").GetDouble(), 3);
        Assert.Equal("spk/broken.wav", Assert.Single(status.GetProperty("failed_files").EnumerateArray()).GetProperty("file").GetString());

        Assert.Equal(total, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE outcome = 'succeeded' AND execution_provider = 'CPUExecutionProvider'"));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(DISTINCT worker) FROM shard_attempts"));
        Assert.Equal(0L, await db.ScalarAsync<long>(
            "SELECT count(*) FROM (SELECT file_index, start_seconds FROM segments GROUP BY 1, 2 HAVING count(*) > 1) d"));
        // Every segment lies inside its shard's items.
        Assert.Equal(0L, await db.ScalarAsync<long>(
            """
            SELECT count(*) FROM segments s WHERE NOT EXISTS (
              SELECT 1 FROM shard_items i WHERE i.shard_id = s.shard_id AND i.file_index = s.file_index
                AND s.start_seconds >= i.start_seconds - 1e-9 AND s.end_seconds <= i.end_seconds + 1e-9)
            """));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_corpus, ".tmp"), "*", SearchOption.AllDirectories));
    }
}
