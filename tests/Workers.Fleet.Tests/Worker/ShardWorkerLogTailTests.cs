using Microsoft.Extensions.Logging;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Fleet.Worker;
using Workers.Pipeline.Vad;
using Workers.Postgres.Corpora;
using Workers.Postgres.Queue;
using Workers.Testing;

namespace Workers.Fleet.Tests.Worker;

/// <summary>
/// A real worker against a real PostgreSQL stores each attempt's own log lines with its outcome
/// (<c>shard_attempts.log_tail</c>), failed or succeeded, lines from its inference thread included,
/// and none of another attempt's.
/// </summary>
public sealed class ShardWorkerLogTailTests(PostgresFixture pg) : IClassFixture<PostgresFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-logtail-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task Each_attempt_stores_its_own_log_lines_with_its_outcome()
    {
        await using var schema = await pg.CreateSchemaAsync();
        var db = schema.DataSource;
        var present = Path.Combine(_dir, "present");
        var gone = Path.Combine(_dir, "gone");
        WriteWav(Path.Combine(present, "a.wav"), 4);
        WriteWav(Path.Combine(gone, "b.wav"), 4);
        File.WriteAllText(Path.Combine(present, "broken.wav"), "not a RIFF header"); // a per-file failure inside the succeeding shard
        var writer = new CorpusWriter(db, TimeProvider.System);
        await writer.WriteAsync(await EnqueuePlanner.PlanAsync(new CorpusListing("folder", present, present, [new SourceFile("a.wav", 4), new SourceFile("broken.wav", 4)], []), probe: null, 8),
            new EnqueueRequest("present"));
        await writer.WriteAsync(await EnqueuePlanner.PlanAsync(new CorpusListing("folder", gone, gone, [new SourceFile("b.wav", 4)], []), probe: null, 4),
            new EnqueueRequest("gone", MaxAttempts: 1));
        Directory.Delete(gone, true); // the share went away after enqueue: CorpusStorageUnavailableException

        var capture = new AttemptLog();
        using var factory = LoggerFactory.Create(b => b.AddProvider(capture));
        capture.Begin(); // a stale attempt's line: the worker's own Begin must drop it
        factory.CreateLogger("Stale").LogInformation("left over from before");
        capture.End();
        var queue = new ShardQueue(db, new QueueOptions { PollSeconds = 1 }, TimeProvider.System);
        await using var listener = new ShardNotificationListener(db);
        var worker = new ShardWorker(queue, listener, new Workers.Postgres.Fleet.WorkerRegistry(db, TimeProvider.System),
            new WorkerOptions { UntilIdle = true, TempRoot = Path.Combine(_dir, "tmp") }, new VadOptions(),
            new ChattyModel(factory.CreateLogger("Inference")), "test", TimeProvider.System, factory.CreateLogger("Worker"), attemptLog: capture);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        Assert.Equal(0, await worker.RunAsync(timeout.Token));

        var failedShard = await schema.ScalarAsync<long>("SELECT s.id FROM shards s JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'gone'");
        var okShard = await schema.ScalarAsync<long>("SELECT s.id FROM shards s JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'present'");
        Assert.Equal("dead", await schema.ScalarAsync<string>("SELECT state::text FROM shards WHERE id = @id", ("id", failedShard)));
        Assert.Equal("succeeded", await schema.ScalarAsync<string>("SELECT state::text FROM shards WHERE id = @id", ("id", okShard)));

        var failed = await schema.ScalarAsync<string>("SELECT log_tail FROM shard_attempts WHERE shard_id = @id AND attempt = 1 AND outcome = 'failed'", ("id", failedShard));
        Assert.Contains($"info Worker: Claimed shard {failedShard} attempt 1: 1 item(s)", failed);
        Assert.Contains($"fail Worker: Shard {failedShard} attempt 1 failed: CorpusStorageUnavailableException: corpus storage unavailable: '{gone}' does not exist", failed);
        Assert.DoesNotContain($"Claimed shard {okShard} ", failed);
        Assert.DoesNotContain("left over from before", failed);

        var succeeded = await schema.ScalarAsync<string>("SELECT log_tail FROM shard_attempts WHERE shard_id = @id AND attempt = 1 AND outcome = 'succeeded'", ("id", okShard));
        Assert.Contains($"info Worker: Claimed shard {okShard} attempt 1: 2 item(s)", succeeded);
        Assert.Contains($"warn Worker: Shard {okShard}: broken.wav [0.0-4.0 s] failed, the shard goes on without it: ", succeeded);
        Assert.Contains("info Inference: first batch on the inference thread", succeeded); // another thread, another category
        Assert.DoesNotContain($"Claimed shard {failedShard} ", succeeded);
        Assert.DoesNotContain("CorpusStorageUnavailableException", succeeded);
        Assert.False(capture.Active); // between attempts nothing is captured
    }

    private static void WriteWav(string path, double seconds)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Workers.Audio.Pcm16Wav.Write(path, 16000, (int)(seconds * 16000), i => (short)(i / 16000 % 2 == 0 ? 8000 * Math.Sin(i * 0.1) : 0));
    }

    /// <summary>A stand-in VAD (loud is speech) that says one thing from the inference thread.</summary>
    private sealed class ChattyModel(ILogger log) : IVadModel
    {
        private int _runs;
        public int BatchCapacity => 16;
        public int StateSize => 1;
        public void ResetState(Span<float> streamState) => streamState.Clear();
        public void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize)
        {
            if (_runs++ == 0) log.LogInformation("first batch on the inference thread ({Thread})", Environment.CurrentManagedThreadId);
            var row = windows.Length / batchSize;
            for (var b = 0; b < batchSize; b++)
            {
                var w = windows.Slice(b * row, row);
                float energy = 0;
                foreach (var x in w) energy += x * x;
                probabilities[b] = energy / row > 1e-3 ? 0.95f : 0.02f;
            }
        }
    }
}
