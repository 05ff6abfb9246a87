using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// Through the real `workers run` (supervisor and worker processes): every attempt row carries the
/// worker's own log lines of that attempt (<c>shard_attempts.log_tail</c>, shown on the dashboard's
/// shard page), so a person finding a failed shard reads what happened without going to the node.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class AttemptLogTailTests(PostgresFixture pg) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-log-tail-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task A_failed_and_a_succeeded_attempt_of_a_real_run_each_store_the_workers_log_lines_about_their_shard()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var present = Path.Combine(_dir, "present");
        var gone = Path.Combine(_dir, "gone");
        TestAudio.WriteWav(Path.Combine(present, "a.wav"), 10);
        TestAudio.WriteWav(Path.Combine(gone, "b.wav"), 10);
        var env = WorkersProcess.Env(db.ConnectionString, Path.Combine(_dir, "tmp"), ("Queue__MaxAttempts", "1"));
        foreach (var (folder, name) in new[] { (present, "present"), (gone, "gone") })
        {
            var enqueue = await WorkersProcess.RunAsync(env, "enqueue", folder, "--name", name);
            Assert.True(enqueue.ExitCode == 0, enqueue.ToString());
        }
        Directory.Delete(gone, true); // the storage went away: the attempt fails as a whole

        var run = await WorkersProcess.RunAsync(env, TimeSpan.FromSeconds(120), "run", "--gpus", "none", "--cpu-workers", "1", "--until-idle");
        Assert.True(run.ExitCode == 0, run.ToString());

        var failedShard = await db.ScalarAsync<long>("SELECT s.id FROM shards s JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'gone'");
        var okShard = await db.ScalarAsync<long>("SELECT s.id FROM shards s JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'present'");
        const string tailOf = "SELECT coalesce(log_tail, '') FROM shard_attempts WHERE shard_id = @id AND outcome = @outcome";

        var failed = await db.ScalarAsync<string>(tailOf, ("id", failedShard), ("outcome", "failed"));
        Assert.Contains($"Claimed shard {failedShard} attempt 1", failed);
        Assert.Contains($"Shard {failedShard} attempt 1 failed: CorpusStorageUnavailableException", failed);
        Assert.DoesNotContain($"shard {okShard} ", failed);

        var succeeded = await db.ScalarAsync<string>(tailOf, ("id", okShard), ("outcome", "succeeded"));
        Assert.Contains($"Claimed shard {okShard} attempt 1", succeeded);
        Assert.DoesNotContain($"shard {failedShard} ", succeeded);
    }
}
