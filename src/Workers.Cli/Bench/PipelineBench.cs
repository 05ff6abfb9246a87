using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Npgsql;
using Workers.Audio.Synthesis;
using Workers.Cli.Commands;
using Workers.Cli.Hosting;
using Workers.Onnx;
using Workers.Postgres.Corpora;

namespace Workers.Cli.Bench;

/// <summary>
/// Whole pipeline against bare inference on the same machine, in one run: the bare figure is
/// Silero alone on one thread with tensors prefilled (OnnxBench); the pipeline figure is
/// `workers run --cpu-workers N` on a generated corpus, timed from the first claim to the last
/// completion in the attempts table (process start-up and model loading excluded, reported apart).
/// </summary>
public static class PipelineBench
{
    public static async Task<int> RunAsync(CliContext ctx, double wavHours, double compressedHours, int workers, CancellationToken ct)
    {
        var root = Inference.ModelsRoot(ctx);
        var catalog = Inference.Catalog(ctx);
        var env = OrtEnvironment.Load();
        var batchSize = ctx.Configuration.GetValue("Pipelines:vad:BatchSize", 64);
        var model = catalog.Resolve(ModelCatalog.SileroVadV5, root);
        var bare = OnnxBench.RunSilero(env, model, new SileroBenchOptions { BatchSizes = [1, 8, 32, batchSize, 128], MinSecondsPerBatchSize = 2 });
        Console.WriteLine($"bare batched Silero v5 inference, ONNX Runtime {bare.OnnxRuntimeVersion}, {bare.ExecutionProvider}, 1 intra-op thread");
        Console.WriteLine("  batch   median us/run   x-realtime per thread   bytes/run");
        foreach (var r in bare.Results) Console.WriteLine($"  {r.BatchSize,5}   {r.MedianMicroseconds,13:N0}   {r.XRealtime,21:N0}   {r.BytesPerRun,9:N1}");

        // The ceiling on the same cores: bare inference on as many threads at once as there are
        // workers (two vCPUs may be one physical core: doubling one thread's figure would flatter it).
        var parallel = Math.Min(workers, Environment.ProcessorCount);
        var concurrent = await Task.WhenAll(Enumerable.Range(0, parallel).Select(_ => Task.Factory.StartNew(() =>
            OnnxBench.RunSilero(env, model, new SileroBenchOptions { BatchSizes = [batchSize], MinSecondsPerBatchSize = 4 }).Results[0].XRealtime,
            ct, TaskCreationOptions.LongRunning, TaskScheduler.Default)));
        var ceiling = concurrent.Sum();
        Console.WriteLine($"  batch {batchSize} on {parallel} threads at once: {ceiling:N0}x realtime in total ({string.Join(" + ", concurrent.Select(c => c.ToString("N0")))})");

        var db = await ctx.DatabaseAsync(ct);
        var dir = Directory.CreateTempSubdirectory("workers-bench-pipeline-").FullName;
        try
        {
            var gen = new SpeechCorpusGenerator(Path.Combine(dir, ".espeak"));
            var rows = new List<(string Format, double Hours, double Rate, double Wall, long Segments)>();
            foreach (var (format, hours) in new[] { ("wav", wavHours), ("flac", compressedHours), ("mp3", compressedHours) })
            {
                if (hours <= 0) continue;
                var corpus = Path.Combine(dir, format);
                Console.Error.WriteLine($"bench: generating {hours:0.##} h of {format} ...");
                var rng = new Random(42);
                for (double left = hours * 3600, i = 0; left > 0; i++)
                {
                    var seconds = Math.Min(left, 120 + rng.NextDouble() * 240);
                    left -= seconds;
                    var wav = Path.Combine(corpus, $"f{i:0000}.wav");
                    gen.WriteWav(wav, seconds, rng);
                    if (format != "wav") { SpeechCorpusGenerator.Encode(wav, Path.ChangeExtension(wav, "." + format), format == "flac" ? 44100 : null); File.Delete(wav); }
                }
                var queue = $"bench-{format}-{Guid.NewGuid():N}"[..24];
                var name = queue;
                var rc = await EnqueueCommand.RunAsync(ctx, new EnqueueCommand.Request(corpus, name, 30, "vad", queue, 0, false, Json: false), ct);
                if (rc != 0) return rc;
                var sw = Stopwatch.StartNew();
                rc = await RunCommand.RunWorkersAsync(ctx, workers, Math.Max(1, Environment.ProcessorCount / workers), queue, untilIdle: true, ct);
                sw.Stop();
                if (rc != 0) return rc;
                var info = await new CorpusStatusReader(db).GetStatusAsync(name, ct);
                await using var cmd = db.CreateCommand(
                    "SELECT extract(epoch FROM max(a.finished_at) - min(a.started_at)) FROM shard_attempts a JOIN shards s ON s.id = a.shard_id WHERE s.corpus_id = @c");
                cmd.Parameters.AddWithValue("c", info.Corpus.Id);
                var busy = Convert.ToDouble(await cmd.ExecuteScalarAsync(ct));
                rows.Add((format, info.ProcessedSeconds / 3600, info.ProcessedSeconds / busy, sw.Elapsed.TotalSeconds, info.Segments));
                await new CorpusAdmin(db, ctx.Time).DeleteAsync(info.Corpus.Id, ct);
                Directory.Delete(corpus, true);
            }

            Console.WriteLine();
            Console.WriteLine($"whole pipeline, {workers} CPU worker processes, batch {batchSize}, on {Environment.ProcessorCount} cores");
            Console.WriteLine("  format   hours   x-realtime (claim..complete)   wall incl. start-up   segments   vs bare batch-" + batchSize + " on " + parallel + " threads");
            foreach (var r in rows)
                Console.WriteLine($"  {r.Format,-6}   {r.Hours,5:0.00}   {r.Rate,26:N0}   {r.Wall,17:0.0} s   {r.Segments,8:N0}   {r.Rate / ceiling,6:0.00}");
            Console.WriteLine($"  (bare ceiling: {ceiling:N0}x realtime)");
            return ExitCodes.Ok;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
