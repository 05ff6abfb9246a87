using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using Workers.Audio;
using Workers.Cli.Commands;
using Workers.Cli.Hosting;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Postgres.Corpora;
using Workers.Postgres.Queue;

namespace Workers.Bench;

/// <summary>
/// Throughput figures, printed as tables. Timings on shared machines are noisy: run each a few
/// times and compare ratios within one run rather than absolute numbers across machines.
/// `enqueue` and `claim` are hosted like a `workers` command: the database, the Queue options and the clock, by constructor.
/// </summary>
public sealed class BenchCommand(WorkersDatabase database, IOptions<QueueOptions> queue, TimeProvider time)
{
    /// <summary>The <c>workers-bench</c> command line: enqueue, claim, pipeline, load, soak, dashboard.</summary>
    public static RootCommand Create()
    {
        var bench = new RootCommand("workers-bench: throughput, load, fault-soak and page-latency figures for Workers (enqueue, claim, pipeline, load, soak, dashboard). " +
            "Configured like `workers` (appsettings.json, ConnectionStrings__Workers; without one, the embedded local cluster).");

        var files = new Option<int>("--files") { Description = "Manifest lines.", DefaultValueFactory = _ => 400_000 };
        var hours = new Option<double>("--hours") { Description = "Total audio hours in the manifest.", DefaultValueFactory = _ => 27_000 };
        var keep = new Option<bool>("--keep") { Description = "Keep the enqueued corpus (e.g. to look at the dashboard at scale)." };
        var enqueue = new Command("enqueue", "Time the enqueue of a generated JSONL manifest (default 400,000 files, 27,000 hours, 30-minute shards).") { files, hours, keep };
        enqueue.SetAction((pr, ct) => CommandRunner.RunAsync<BenchCommand>((h, ct) => h.EnqueueAsync(pr.GetValue(files), pr.GetValue(hours), pr.GetValue(keep), ct), ct));

        var shards = new Option<int>("--shards") { Description = "Shards to claim per run.", DefaultValueFactory = _ => 20_000 };
        var conns = new Option<int[]>("--connections") { Description = "Concurrent claimers to measure.", DefaultValueFactory = _ => [1, 8], AllowMultipleArgumentsPerToken = true };
        var claim = new Command("claim", "Claims per second through the SKIP LOCKED queue with 1 and 8 connections.") { shards, conns };
        claim.SetAction((pr, ct) => CommandRunner.RunAsync<BenchCommand>((h, ct) => h.ClaimAsync(pr.GetValue(shards), pr.GetValue(conns)!, ct), ct));

        bench.Subcommands.Add(enqueue);
        bench.Subcommands.Add(claim);
        var hoursPerFormat = new Option<double>("--hours") { Description = "Hours of audio per format (the issue's figures use 2; smaller for a quick run).", DefaultValueFactory = _ => 2 };
        var formats = new Option<string>("--formats") { Description = "Formats to measure, comma-separated: " + string.Join(",", PipelineBench.Formats.Select(f => f.Name)) + ".", DefaultValueFactory = _ => string.Join(",", PipelineBench.Formats.Select(f => f.Name)) };
        var workers = new Option<int>("--cpu-workers") { Description = "Worker processes for the whole-pipeline run; the cores are split evenly between them.", DefaultValueFactory = _ => 2 };
        var stageSeconds = new Option<double>("--stage-seconds") { Description = "Seconds of speech segments for the model-stage row (0 skips it).", DefaultValueFactory = _ => 600 };
        var fileSeconds = new Option<double>("--file-seconds") { Description = "The length of every file of the corpus, dividing a 30-minute shard: 300 (the issue's figures), or e.g. 10 for a corpus of short clips, where ffmpeg's start-up weighs most.", DefaultValueFactory = _ => PipelineBench.DefaultFileSeconds };
        var workersFrom = new Option<string?>("--workers") { Description = "A folder holding the workers.dll the whole run's worker processes run, e.g. a node's `dotnet publish src/Workers.Cli -c Release -r linux-x64 -o DIR` (ReadyToRun, as nodes run it); default: this build's own." };
        var rounds = new Option<int>("--rounds") { Description = "Whole runs per format, alternating with the measurements of the limits; the row is the round of median ratio, with the lowest and highest beside it. This machine's speed drifts by a tenth within minutes: 3 or more for a figure to report.", DefaultValueFactory = _ => 1 };
        var pipeline = new Command("pipeline", "Per format (16 kHz WAV, 44.1 kHz WAV, FLAC, MP3, Ogg/Opus): the whole run's x-realtime against its limit 1/(1/bare inference + 1/decode alone), measured in the same run, and the decode-bound figure (a model that costs nothing) against decode alone; then a model stage at several BatchSeconds against the same model bare.")
        {
            hoursPerFormat, formats, workers, stageSeconds, workersFrom, fileSeconds, rounds,
        };
        pipeline.SetAction((pr, ct) => CommandRunner.RunAsync<PipelineBench>(async (h, ct) =>
        {
            var chosen = pr.GetValue(formats)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var rc = chosen.Length == 0 ? 0 : await h.RunAsync(pr.GetValue(hoursPerFormat), chosen, pr.GetValue(workers), ct, pr.GetValue(workersFrom), pr.GetValue(fileSeconds), pr.GetValue(rounds));
            // The model-stage row (issue 15), in its own file to keep PipelineBench as issue 10 left it.
            if (rc == 0 && pr.GetValue(stageSeconds) > 0) ModelStageBench.Run(pr.GetValue(stageSeconds), threads: 1, Console.Out);
            return rc;
        }, ct, services =>
        {
            // What the handler reads, checked on start: Fleet (with Fleet:Restart and Inference, for the launcher), Audio, Corpus:Limits.
            RunCommand.AddLauncher(services);
            EnqueueCommand.AddServices(services);
            services.AddSettings<AudioDecoderOptions>(AudioSettings.Section, AudioSettings.Problems);
        }));
        bench.Subcommands.Add(pipeline);
        bench.Subcommands.Add(LoadBench.Create());
        bench.Subcommands.Add(SoakBench.Create());
        bench.Subcommands.Add(DashboardBench.Create());
        return bench;
    }

    /// <summary>A JSONL manifest of <paramref name="fileCount"/> files (5,000 speakers) whose durations
    /// vary ±80% around the mean and add up to about <paramref name="hours"/>; seeded, so repeatable.</summary>
    internal static async Task WriteManifestAsync(string manifest, int fileCount, double hours)
    {
        var mean = hours * 3600 / fileCount;
        var rng = new Random(1);
        await using var w = new StreamWriter(manifest);
        for (var i = 0; i < fileCount; i++)
        {
            var d = mean * (0.2 + 1.6 * rng.NextDouble());
            await w.WriteLineAsync($"{{\"path\": \"spk{i % 5000:0000}/utt{i:0000000}.flac\", \"duration\": {d.ToString("0.###", CultureInfo.InvariantCulture)}}}");
        }
    }

    public async Task<int> EnqueueAsync(int fileCount, double hours, bool keep, CancellationToken ct)
    {
        var db = await database.OpenAsync(ct);
        var dir = Directory.CreateTempSubdirectory("workers-bench-").FullName;
        try
        {
            var manifest = Path.Combine(dir, "manifest.jsonl");
            await WriteManifestAsync(manifest, fileCount, hours);
            var size = new FileInfo(manifest).Length;

            var total = Stopwatch.StartNew();
            var sw = Stopwatch.StartNew();
            var listing = ManifestReader.Read(manifest);
            var read = sw.Elapsed;
            sw.Restart();
            var plan = await EnqueuePlanner.PlanAsync(listing, probe: null, 30 * 60, ct);
            var planned = sw.Elapsed;
            sw.Restart();
            var name = $"bench-enqueue-{time.GetUtcNow():yyyyMMddHHmmss}";
            var id = await new CorpusWriter(db, time).WriteAsync(plan, new EnqueueRequest(name, MaxAttempts: queue.Value.MaxAttempts), ct);
            var written = sw.Elapsed;
            total.Stop();
            var items = plan.Plan.Items.Count;

            Console.WriteLine($"enqueue of a {fileCount:N0}-file manifest ({size / 1e6:N1} MB, {plan.AudioSeconds / 3600:N0} h) into {plan.ShardCount:N0} shards, {items:N0} items");
            Console.WriteLine($"  read + validate manifest  {read.TotalSeconds,7:0.00} s");
            Console.WriteLine($"  plan shards               {planned.TotalSeconds,7:0.00} s");
            Console.WriteLine($"  write (one tx, COPY)      {written.TotalSeconds,7:0.00} s   {(fileCount + items + plan.ShardCount) / written.TotalSeconds:N0} rows/s");
            Console.WriteLine($"  total                     {total.Elapsed.TotalSeconds,7:0.00} s");
            if (keep) Console.WriteLine($"  kept as corpus '{name}'");
            else await new CorpusAdmin(db, time).DeleteAsync(id, ct);
            return ExitCodes.Ok;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    public async Task<int> ClaimAsync(int shardCount, int[] connections, CancellationToken ct)
    {
        await database.OpenAsync(ct); // migrated
        var cs = new NpgsqlConnectionStringBuilder(await database.ConnectionStringAsync(ct))
        {
            MaxPoolSize = Math.Max(16, connections.Max() + 4),
        };
        await using var db = NpgsqlDataSource.Create(cs.ConnectionString);

        var queueName = "bench-claim-" + Guid.NewGuid().ToString("N")[..8];
        var files = Enumerable.Range(0, shardCount).Select(i => new SourceFile($"f{i:0000000}.wav", 60)).ToList();
        var plan = await EnqueuePlanner.PlanAsync(new CorpusListing("manifest", "/bench/claim.jsonl", "/bench", files, []), probe: null, 60, ct);
        var id = await new CorpusWriter(db, time).WriteAsync(plan, new EnqueueRequest(queueName, Queue: queueName), ct);
        var admin = new CorpusAdmin(db, time);
        var shardQueue = new ShardQueue(db, queue.Value, time);
        try
        {
            Console.WriteLine($"claims of single shards from a {shardCount:N0}-shard queue (one claim = one SKIP LOCKED CTE + attempt row)");
            Console.WriteLine("  connections   claims/s   p50 ms   p99 ms");
            foreach (var n in connections)
            {
                await admin.ResetForBenchAsync(id, ct);
                var latencies = new List<double>[n];
                var sw = Stopwatch.StartNew();
                await Task.WhenAll(Enumerable.Range(0, n).Select(w => Task.Run(async () =>
                {
                    var mine = latencies[w] = new List<double>(shardCount / n + 16);
                    var who = new WorkerIdentity($"bench-{w}", Environment.MachineName);
                    while (true)
                    {
                        var t = Stopwatch.GetTimestamp();
                        var got = await shardQueue.ClaimAsync(who, [queueName], 1, ct);
                        mine.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                        if (got.Count == 0) return;
                    }
                }, ct)));
                sw.Stop();
                var all = latencies.SelectMany(l => l).Order().ToArray();
                Console.WriteLine($"  {n,11}   {shardCount / sw.Elapsed.TotalSeconds,8:N0}   {Percentile.Of(all, 0.5),6:0.00}   {Percentile.Of(all, 0.99),6:0.00}");
            }
        }
        finally
        {
            await admin.DeleteAsync(id, ct);
        }
        return ExitCodes.Ok;
    }
}
