using System.CommandLine;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Workers.Audio;
using Workers.Cli.Hosting;
using Workers.Core.Corpora;
using Workers.Core.Naming;
using Workers.Core.Options;
using Workers.Postgres.Corpora;

namespace Workers.Cli.Commands;

public static class EnqueueCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("PATH") { Description = "A folder of audio files (searched recursively) or a JSONL manifest ({\"path\": ..., \"duration\": seconds} a line)." };
        var name = new Option<string?>("--name") { Description = "Corpus name, unique. Default: the folder's or manifest's name." };
        var shardMinutes = new Option<double>("--shard-minutes") { Description = "Audio per shard, in minutes.", DefaultValueFactory = _ => 30 };
        var pipeline = new Option<string>("--pipeline") { Description = "Pipeline to run (a section of Pipelines in appsettings.json).", DefaultValueFactory = _ => "vad" };
        var queue = new Option<string>("--queue") { Description = "Queue the shards go to.", DefaultValueFactory = _ => "default" };
        var priority = new Option<int>("--priority") { Description = "Higher runs first.", DefaultValueFactory = _ => 0 };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the plan (files, hours, shards, failed files); write nothing." };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };

        var cmd = new Command("enqueue", "Scan a folder or read a manifest, plan duration-balanced shards and queue them.")
        {
            path, name, shardMinutes, pipeline, queue, priority, dryRun, json,
        };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync<Handler>((h, ct) => h.RunAsync(new Request(pr.GetValue(path)!, pr.GetValue(name), pr.GetValue(shardMinutes),
            pr.GetValue(pipeline)!, pr.GetValue(queue)!, pr.GetValue(priority), pr.GetValue(dryRun), pr.GetValue(json)), ct), ct, AddServices));
        return cmd;
    }

    /// <summary>What <see cref="Handler"/> needs besides the host's services: Corpus:Limits (checked on start) and itself.</summary>
    public static void AddServices(IServiceCollection services)
    {
        services.AddSettings<CorpusOptions>(CorpusOptions.Section, o => o.Limits.Validate());
        services.TryAddTransient<Handler>();
    }

    public sealed record Request(string Path, string? Name, double ShardMinutes, string Pipeline, string Queue, int Priority, bool DryRun, bool Json);

    /// <summary>`workers enqueue` (also run by `demo` and the pipeline bench): scan or read, plan, write in one transaction.</summary>
    public sealed class Handler(WorkersDatabase database, IOptions<QueueOptions> queue, IOptions<CorpusOptions> corpus, IOptions<PipelinesOptions> pipelines, TimeProvider time)
    {
        public async Task<int> RunAsync(Request req, CancellationToken ct)
        {
            // The same rules, scan, probe and plan as the dashboard's enqueue form (EnqueueSettings, EnqueuePlanner).
            var settings = new EnqueueSettings(req.Name, req.ShardMinutes, req.Pipeline, req.Queue, req.Priority);
            var corpusName = settings.CorpusName(req.Path);
            var problems = settings.Validate(corpusName, pipelines.Value.Names, f => "--" + f.Replace('_', '-'));
            if (problems.Count > 0) throw new ArgumentException(string.Join(Environment.NewLine + "       ", problems));

            // Corpus:Limits: what a speech file and a shard may plausibly be (the dashboard applies the same); validated on start.
            var limits = corpus.Value.Limits;

            var sw = Stopwatch.StartNew();
            var plan = await EnqueuePlanner.PlanSourceAsync(req.Path, new AudioDurationProbe(limits), req.ShardMinutes * 60, ct, limits);
            var listing = plan.Listing;
            var planned = sw.Elapsed;

            long? corpusId = null;
            if (!req.DryRun)
            {
                var db = await database.OpenAsync(ct);
                corpusId = await new CorpusWriter(db, time).WriteAsync(plan, new EnqueueRequest(corpusName, req.Pipeline, req.Queue, req.Priority, queue.Value.MaxAttempts), ct);
            }
            var total = sw.Elapsed;

            if (req.Json)
            {
                Json.Write(new
                {
                    name = corpusName,
                    corpus_id = corpusId,
                    dry_run = req.DryRun,
                    source = listing.Source,
                    files = plan.FileCount,
                    audio_seconds = plan.AudioSeconds,
                    audio_hours = plan.AudioSeconds / 3600,
                    shards = plan.ShardCount,
                    shard_seconds = plan.Plan.TargetSeconds,
                    queue = req.Queue,
                    pipeline = req.Pipeline,
                    priority = req.Priority,
                    failed_files = plan.FailedFiles.Select(f => new { file = f.Path, error = f.Reason }),
                    plan_seconds = planned.TotalSeconds,
                    total_seconds = total.TotalSeconds,
                });
            }
            else
            {
                Console.WriteLine($"{(req.DryRun ? "Dry run (nothing written): " : "Enqueued ")}corpus '{Names.Printable(corpusName)}'{(corpusId is null ? "" : $" (id {corpusId})")}");
                Console.WriteLine($"  files        {plan.FileCount:N0}");
                Console.WriteLine($"  audio        {plan.AudioSeconds / 3600:N2} h");
                Console.WriteLine($"  shards       {plan.ShardCount:N0} of about {req.ShardMinutes:0.##} min, queue '{Names.Printable(req.Queue)}', pipeline '{Names.Printable(req.Pipeline)}', priority {req.Priority}");
                Console.WriteLine($"  failed files {plan.FailedFiles.Count:N0}");
                foreach (var f in plan.FailedFiles.Take(20)) Console.WriteLine($"    {Names.Printable(f.Path)}: {Names.Printable(f.Reason)}");
                if (plan.FailedFiles.Count > 20) Console.WriteLine($"    ... and {plan.FailedFiles.Count - 20} more (workers status {Names.Printable(corpusName)} --json lists them)");
                Console.WriteLine($"  took         {total.TotalSeconds:0.00} s (planning {planned.TotalSeconds:0.00} s)");
            }
            return ExitCodes.Ok;
        }
    }
}
