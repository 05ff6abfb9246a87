using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Workers.Audio;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Fleet.Worker;
using Workers.Pipeline.Stages;
using Workers.Pipeline.Vad;
using Workers.Postgres.Corpora;
using Workers.Postgres.Queue;
using Workers.Stages;
using Workers.Stages.Models;
using Workers.Testing;

namespace Workers.Fleet.Tests.Worker;

/// <summary>
/// A worker serving two pipelines against a real PostgreSQL and a real ONNX model stage: each
/// shard runs the pipeline its corpus names, and the stage's results, written in the fenced
/// COMPLETE, equal the independent computation over each segment's samples.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ShardWorkerStagesTests(PostgresFixture pg) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-stages-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task Each_shard_runs_the_pipeline_its_corpus_names_and_stage_results_match_the_segments()
    {
        await using var schema = await pg.CreateSchemaAsync(); // migrated; the worker never stops the database, so the shared server does
        var db = schema.DataSource;
        foreach (var name in new[] { "plain", "energy" })
        {
            var folder = Path.Combine(_dir, name);
            var files = new List<SourceFile>();
            for (var i = 0; i < 3; i++)
            {
                WriteWav(Path.Combine(folder, $"f{i}.wav"), 7, seed: i);
                files.Add(new SourceFile($"f{i}.wav", 7));
            }
            var plan = await EnqueuePlanner.PlanAsync(new CorpusListing("folder", folder, folder, files, []), probe: null, 7);
            await new CorpusWriter(db, TimeProvider.System).WriteAsync(plan, new EnqueueRequest(name, Pipeline: name == "plain" ? "vad" : "energy"));
        }
        var modelPath = Path.Combine(_dir, "energy.onnx");
        File.WriteAllBytes(modelPath, ReferenceModels.EnergyProjection());
        using var stage = new ModelStage(modelPath, new ModelStageOptions { Name = "energy", Model = "energy", BatchSeconds = 5 });
        var model = new LoudIsSpeech();
        ShardPipeline[] pipelines = [new("vad", new VadOptions(), model), new("energy", new VadOptions(), model, [stage])];

        var queue = new ShardQueue(db, new QueueOptions { PollSeconds = 1 }, TimeProvider.System);
        await using var listener = new ShardNotificationListener(db);
        var worker = new ShardWorker(queue, listener, new Workers.Postgres.Fleet.WorkerRegistry(db, TimeProvider.System),
            new WorkerOptions { UntilIdle = true, TempRoot = Path.Combine(_dir, "tmp") }, new VadOptions(), model, "test",
            TimeProvider.System, NullLogger.Instance, pipelines: pipelines);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        Assert.Equal(0, await worker.RunAsync(timeout.Token));
        Assert.Equal(6, worker.Completed);

        // The worker said which pipelines it serves.
        await using (var w = db.CreateCommand("SELECT pipelines FROM workers"))
            Assert.Equal(["energy", "vad"], (string[])(await w.ExecuteScalarAsync())!);

        await using var cmd = db.CreateCommand("""
            SELECT c.name, f.path, s.start_seconds, s.end_seconds, r.stage, r.result::text
            FROM segments s JOIN corpora c ON c.id = s.corpus_id
            JOIN files f ON f.corpus_id = s.corpus_id AND f.file_index = s.file_index
            LEFT JOIN segment_results r ON r.shard_id = s.shard_id AND r.file_index = s.file_index AND r.start_seconds = s.start_seconds
            ORDER BY c.name, f.path, s.start_seconds
            """);
        await using var r = await cmd.ExecuteReaderAsync();
        int plain = 0, energy = 0;
        while (await r.ReadAsync())
        {
            if (r.GetString(0) == "plain")
            {
                plain++;
                Assert.True(r.IsDBNull(4)); // the vad pipeline has no stages: no results
                continue;
            }
            energy++;
            Assert.Equal("energy", r.GetString(4));
            var values = JsonSerializer.Deserialize<Dictionary<string, float[]>>(r.GetString(5))!["embedding"];
            var start = r.GetDouble(2);
            var end = r.GetDouble(3);
            using var source = AudioDecoder.Open(Path.Combine(_dir, "energy", r.GetString(1)), start, end);
            var samples = new float[(int)Math.Round((end - start) * 16000)];
            var n = 0;
            while (n < samples.Length && source.Read(samples.AsSpan(n)) is var k and > 0) n += k;
            var expected = ReferenceModels.Expected(samples.AsSpan(0, n));
            for (var d = 0; d < expected.Length; d++)
                Assert.True(Math.Abs(expected[d] - values[d]) < 2e-3 * Math.Max(1, Math.Abs(expected[d])), $"{r.GetString(1)} {start}: {expected[d]} vs {values[d]}");
        }
        Assert.True(energy >= 9, $"{energy} segments"); // 4 loud seconds per 7-second file
        Assert.Equal(plain, energy);
    }

    /// <summary>Loud (speech-like) in even seconds, silent in odd ones, with a different tone per file.</summary>
    private static void WriteWav(string path, double seconds, int seed)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Pcm16Wav.Write(path, 16000, (int)(seconds * 16000), i => (short)(i / 16000 % 2 == 0 ? (6000 + 1000 * seed) * Math.Sin(i * (0.05 + 0.02 * seed)) + 500 : 0));
    }
}
