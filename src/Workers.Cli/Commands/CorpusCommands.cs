using System.CommandLine;
using Microsoft.Extensions.Options;
using Workers.Cli.Hosting;
using Workers.Core.Options;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;

namespace Workers.Cli.Commands;

public static class CorpusCommands
{
    /// <summary>Who the audit trail names for an action taken from this command line.</summary>
    private static Actor CliActor => new("cli:" + Environment.UserName, null);

    public static Command Rerun()
    {
        var corpus = new Argument<string>("CORPUS");
        var failed = new Option<bool>("--failed") { Description = "Re-run every dead shard of the corpus." };
        var shard = new Option<long[]>("--shard") { Description = "Re-run these shards (ids from `workers status`).", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("rerun", "Put failed (dead) shards back in the queue with a fresh attempt budget; their attempt history is kept.") { corpus, failed, shard };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync<Handler>((h, ct) => h.RerunAsync(pr.GetValue(corpus)!, pr.GetValue(failed), pr.GetValue(shard) ?? [], ct), ct));
        return cmd;
    }

    public static Command Cancel()
    {
        var corpus = new Argument<string>("CORPUS");
        var cmd = new Command("cancel", "Cancel a corpus: its queued and running shards stop; results of running ones are discarded.") { corpus };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync<Handler>((h, ct) => h.CancelAsync(pr.GetValue(corpus)!, ct), ct));
        return cmd;
    }

    /// <summary>`rerun` and `cancel`: the database, the Queue options (attempt budget) and the clock.</summary>
    public sealed class Handler(WorkersDatabase database, IOptions<QueueOptions> queue, TimeProvider time)
    {
        public async Task<int> RerunAsync(string corpus, bool failed, long[] ids, CancellationToken ct)
        {
            if (failed == ids.Length > 0)
                throw new ArgumentException("Say which shards: --failed, or --shard ID [ID ...] (not both).");
            var db = await database.OpenAsync(ct);
            var info = await new CorpusStatusReader(db).GetCorpusAsync(corpus, ct);
            var admin = new CorpusAdmin(db, time);
            var maxAttempts = queue.Value.MaxAttempts;
            var done = ids.Length > 0
                ? await admin.RerunShardsAsync(info.Id, ids, maxAttempts,
                    new AuditRecord(CliActor, "shard.rerun", "corpus:" + info.Name, "shards " + string.Join(", ", ids)), ct)
                : await admin.RerunFailedAsync(info.Id, maxAttempts, new AuditRecord(CliActor, "corpus.rerun_failed", "corpus:" + info.Name), ct);
            Console.WriteLine($"re-queued {done.Count} shard(s) of '{info.Name}'");
            if (ids.Length > 0 && done.Count < ids.Length)
                Console.Error.WriteLine($"not re-queued (not in this corpus, or still queued/running): {string.Join(", ", ids.Except(done))}");
            return ExitCodes.Ok;
        }

        public async Task<int> CancelAsync(string corpus, CancellationToken ct)
        {
            var db = await database.OpenAsync(ct);
            var info = await new CorpusStatusReader(db).GetCorpusAsync(corpus, ct);
            var n = await new CorpusAdmin(db, time).CancelAsync(info.Id, new AuditRecord(CliActor, "corpus.cancel", "corpus:" + info.Name), ct);
            Console.WriteLine($"cancelled '{info.Name}': {n} shard(s) stopped");
            return ExitCodes.Ok;
        }
    }
}
