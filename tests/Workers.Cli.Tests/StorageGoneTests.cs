using Workers.Audio.Synthesis;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// The corpus's storage disappears between enqueue and processing (an unmounted share; here the
/// folder is renamed away). The shards fail as a whole with CorpusStorageUnavailableException and,
/// their budget spent, are dead, with not one file recorded as failed: the audio is not bad, it is
/// not there. Once the folder is back, `workers rerun --failed` and a run process everything, and
/// the segments equal a clean run's (issue 6).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class StorageGoneTests(PostgresFixture pg) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-storage-gone-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task Shards_of_a_corpus_whose_folder_is_gone_die_without_file_failures_and_a_rerun_once_it_is_back_equals_a_clean_run()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var corpus = Path.Combine(_dir, "corpus");
        var gen = new SpeechCorpusGenerator(Path.Combine(_dir, "espeak"));
        gen.WriteWav(Path.Combine(corpus, "a.wav"), 45, new Random(11));
        gen.WriteWav(Path.Combine(corpus, "sub", "b.wav"), 45, new Random(12));
        var env = WorkersProcess.Env(db.ConnectionString, Path.Combine(_dir, "tmp"), ("Queue__MaxAttempts", "1"));
        var run = WorkersProcess.RunOneCpuWorkerUntilIdle;

        var enqueue = await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "gone", "--shard-minutes", "1");
        Assert.True(enqueue.ExitCode == 0, enqueue.ToString());
        var shards = await db.ScalarAsync<long>("SELECT count(*) FROM shards");
        Assert.True(shards >= 2, $"{shards} shard(s)");

        var away = corpus + "-away";
        Directory.Move(corpus, away);
        var failed = await WorkersProcess.RunAsync(env, TimeSpan.FromSeconds(90), run);
        Assert.True(failed.ExitCode == 0, failed.ToString());
        Assert.Equal(shards, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state = 'dead'"));
        Assert.Equal(shards, await db.ScalarAsync<long>(
            "SELECT count(*) FROM shard_attempts WHERE outcome = 'failed' AND error_type = 'CorpusStorageUnavailableException'"));
        Assert.Equal(shards, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts"));
        var message = await db.ScalarAsync<string>("SELECT error_message FROM shard_attempts LIMIT 1");
        Assert.Contains($"'{corpus}' does not exist", message);
        Assert.Contains("workers rerun", message);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM file_failures"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM segments"));

        Directory.Move(away, corpus);
        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "clean", "--shard-minutes", "1")).ExitCode);
        var rerun = await WorkersProcess.RunAsync(env, "rerun", "gone", "--failed");
        Assert.True(rerun.ExitCode == 0, rerun.ToString());
        Assert.Contains($"re-queued {shards} shard(s) of 'gone'", rerun.StdOut);
        var again = await WorkersProcess.RunAsync(env, TimeSpan.FromSeconds(90), run);
        Assert.True(again.ExitCode == 0, again.ToString());

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shards WHERE state <> 'succeeded'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM file_failures"));
        var clean = await CorpusSegments.OfAsync(db, "clean");
        Assert.True(clean.Count > 10, $"only {clean.Count} segments");
        Assert.Contains(clean, s => s.File == "sub/b.wav");
        Assert.Equal(clean, await CorpusSegments.OfAsync(db, "gone"));
    }
}
