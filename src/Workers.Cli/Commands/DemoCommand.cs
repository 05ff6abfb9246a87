using System.CommandLine;
using System.Diagnostics;
using Workers.Audio.Synthesis;
using Workers.Cli.Hosting;
using Workers.Onnx;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OptionsValidationException = Workers.Core.Options.OptionsValidationException;
using Npgsql;
using Workers.Core.Options;
using Workers.Dashboard;
using Workers.Postgres.Corpora;

namespace Workers.Cli.Commands;

/// <summary>The main job end to end on the embedded default: models, a generated speech corpus,
/// enqueue, two CPU worker processes until idle, and the figures a person wants to see.</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var folder = new Option<string>("--folder") { Description = "Where the generated corpus is written.", DefaultValueFactory = _ => Path.Combine(Path.GetTempPath(), "workers-demo-corpus") };
        var minutes = new Option<double>("--minutes") { Description = "Audio to generate, in minutes.", DefaultValueFactory = _ => 40 };
        var workers = new Option<int>("--cpu-workers") { Description = "Worker processes.", DefaultValueFactory = _ => 2 };
        var dashboard = new Option<string>("--dashboard") { Description = "Where the dashboard listens while the demo runs ('off' for none); a taken port falls back to a free one.", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        var keepServing = new Option<bool>("--keep-serving") { Description = "After the run, keep the dashboard up until Ctrl+C (to browse the results, re-run, enqueue more)." };
        var cmd = new Command("demo", "The whole job end to end on a generated speech corpus: local database, dashboard, enqueue, workers, results.") { folder, minutes, workers, dashboard, keepServing };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync<Handler>((h, ct) => h.RunAsync(new Request(pr.GetValue(folder)!, pr.GetValue(minutes), pr.GetValue(workers),
            pr.GetValue(dashboard)!, pr.GetValue(keepServing)), ct), ct, services =>
        {
            // Corpus for both the enqueue (its limits) and the dashboard (its roots): validated whole, once.
            services.AddSettings<CorpusOptions>(CorpusOptions.Section, o => o.Validate());
            services.TryAddTransient<EnqueueCommand.Handler>();
            RunCommand.AddLauncher(services);
            ServeCommand.AddDashboard(services);
        }));
        return cmd;
    }

    public sealed record Request(string Folder, double Minutes, int Workers, string Dashboard, bool KeepServing);

    /// <summary>The demo: the models folder, the database, the enqueue and the node launcher `workers` itself uses, and the dashboard.</summary>
    public sealed class Handler(ModelFolder models, WorkersDatabase database, EnqueueCommand.Handler enqueue, RunCommand.Launcher launcher,
        ServeCommand.DashboardFactory dashboard, IOptions<CorpusOptions> corpusOptions, TimeProvider time)
    {
        public async Task<int> RunAsync(Request req, CancellationToken ct)
        {
            var dir = req.Folder;
            var total = req.Minutes * 60;
            var n = Math.Max(1, req.Workers);

            await ModelFetcher.FetchAllAsync(models.Catalog(), models.Root, l => Console.Error.WriteLine("models: " + l), ct);

            Console.WriteLine($"Generating about {total / 60:0} minutes of synthesized speech in {dir} ...");
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            var files = Generate(dir, total);
            Console.WriteLine($"  {files} files: 16 kHz WAV, 44.1 kHz FLAC, MP3, one lecture of up to 12 minutes split across 5-minute shards, one broken file");

            var db = await database.OpenAsync(ct);
            await using var web = await StartDashboardAsync(db, req.Dashboard, dir, ct);
            var name = $"demo-{time.GetUtcNow():yyyyMMdd-HHmmss}";
            var rc = await enqueue.RunAsync(new EnqueueCommand.Request(dir, name, 5, "vad", "default", 0, DryRun: false, Json: false), ct);
            if (rc != ExitCodes.Ok) return rc;

            Console.WriteLine($"Running {n} CPU worker processes until the queue is idle ...");
            var sw = Stopwatch.StartNew();
            rc = await launcher.RunWorkersAsync(n, Math.Max(1, Environment.ProcessorCount / n), "default", untilIdle: true, ct);
            sw.Stop();

            var status = await new CorpusStatusReader(db).GetStatusAsync(name, ct);
            Console.WriteLine();
            Console.WriteLine($"corpus          {name}");
            Console.WriteLine($"hours processed {status.ProcessedSeconds / 3600:0.000} h of {status.Corpus.AudioSeconds / 3600:0.000} h");
            Console.WriteLine($"wall time       {sw.Elapsed.TotalSeconds:0.0} s (workers, including start-up)");
            Console.WriteLine($"x-realtime      {status.ProcessedSeconds / sw.Elapsed.TotalSeconds:0}x");
            Console.WriteLine($"segments found  {status.Segments:N0}");
            Console.WriteLine($"shards          {string.Join("  ", status.ShardsByState.Select(kv => $"{kv.Key} {kv.Value}"))}");
            Console.WriteLine($"failed files    {status.FailedFilesTotal}");
            foreach (var f in status.FailedFiles) Console.WriteLine($"  {f.File}: {f.Error}");
            Console.WriteLine();
            Console.WriteLine($"Next: workers status {name}   |   workers export {name} --output segments.jsonl   |   workers serve");
            if (web is not null && req.KeepServing)
            {
                Console.WriteLine($"Dashboard still up at {web.Urls.First()}; Ctrl+C (or SIGTERM) to stop.");
                try { await Task.Delay(Timeout.Infinite, ct); }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
            }
            if (web is not null) await web.StopAsync(CancellationToken.None);
            return rc;
        }

        /// <summary>The dashboard in this process for the length of the demo, on <paramref name="url"/>
        /// or, when that port is taken, on a free loopback port; null when <paramref name="url"/> is "off".</summary>
        private async Task<WebApplication?> StartDashboardAsync(NpgsqlDataSource db, string url, string folder, CancellationToken ct)
        {
            if (url.Equals("off", StringComparison.OrdinalIgnoreCase)) return null;
            var configured = corpusOptions.Value;
            // Without configured roots, the demo's own corpus folder is the one root the enqueue form may use
            // (a copy: the validated options stay as configured).
            var corpus = configured.Enabled ? configured : new CorpusOptions
            {
                AllowedRoots = [Path.GetFullPath(folder)],
                ScanTimeoutSeconds = configured.ScanTimeoutSeconds,
                Limits = configured.Limits,
            };
            OptionsValidationException.ThrowIfAny(corpus.Validate());
            foreach (var candidate in new[] { url, "http://127.0.0.1:0" })
            {
                var app = DashboardApp.Build(dashboard.Host(db, corpus), [candidate],
                    b => b.Logging.AddFilter("Microsoft.Hosting", LogLevel.Warning));
                try
                {
                    await app.StartAsync(ct);
                    Console.WriteLine($"Dashboard: {app.Urls.First()}  (open it to watch the run; --keep-serving keeps it up afterwards)");
                    return app;
                }
                catch (IOException e) when (candidate == url)
                {
                    Console.Error.WriteLine($"warning: the dashboard cannot listen on {url} ({e.Message}); using a free port instead");
                    await app.DisposeAsync();
                }
            }
            return null;
        }
    }

    private static int Generate(string dir, double totalSeconds)
    {
        var gen = new SpeechCorpusGenerator(Path.Combine(Path.GetTempPath(), "workers-espeak-cache"));
        var rng = new Random(7);
        var count = 0;
        // The lecture is longer than a 5-minute shard (so it is cut across shards) when there is room for it.
        var lecture = Math.Clamp(totalSeconds * 0.3, 10, 720);
        var remaining = totalSeconds - lecture;
        gen.WriteWav(Path.Combine(dir, "lectures", "lecture-01.wav"), lecture, rng);
        count++;
        for (var i = 0; remaining > 0; i++, count++)
        {
            var seconds = Math.Min(remaining, 20 + rng.NextDouble() * 100);
            remaining -= seconds;
            var wav = Path.Combine(dir, $"speaker{i % 4:00}", $"utt{i:0000}.wav");
            gen.WriteWav(wav, seconds, rng);
            if (i % 5 == 3) { SpeechCorpusGenerator.Encode(wav, Path.ChangeExtension(wav, ".flac"), 44100); File.Delete(wav); }
            else if (i % 5 == 4) { SpeechCorpusGenerator.Encode(wav, Path.ChangeExtension(wav, ".mp3")); File.Delete(wav); }
        }
        Directory.CreateDirectory(Path.Combine(dir, "speaker00"));
        File.WriteAllText(Path.Combine(dir, "speaker00", "broken.wav"), "not audio at all");
        return count + 1;
    }
}
