using System.CommandLine;
using Workers.Cli.Demo;
using Workers.Cli.Hosting;
using Workers.Postgres.Corpora;

namespace Workers.Cli.Commands;

public static class DemoCommand
{
    public static Command Create()
    {
        var folder = new Option<string>("--folder") { Description = "Where the generated corpus is written.", DefaultValueFactory = _ => Path.Combine(Path.GetTempPath(), "workers-demo-corpus") };
        var cmd = new Command("demo", "The main job end to end on a generated corpus: local database, corpus generated and enqueued, status printed.") { folder };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync(async (ctx, ct) =>
        {
            var dir = pr.GetValue(folder)!;
            Console.WriteLine($"Generating a demo corpus in {dir} ...");
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            var files = DemoCorpus.Write(dir);
            Console.WriteLine($"  {files.Count} WAV files, one of them 12 minutes long (split across 5-minute shards)");
            var name = $"demo-{ctx.Time.GetUtcNow():yyyyMMdd-HHmmss}";
            var rc = await EnqueueCommand.RunAsync(ctx, new EnqueueCommand.Request(dir, name, 5, "vad", "default", 0, DryRun: false, Json: false), ct);
            if (rc != ExitCodes.Ok) return rc;
            Console.WriteLine();
            var status = await new CorpusStatusReader(await ctx.DatabaseAsync(ct)).GetStatusAsync(name, ct);
            Json.Write(StatusCommand.ToJson(status));
            Console.WriteLine();
            Console.WriteLine("The shards are queued. Processing them (`workers run`) is not built yet: see the pipeline issue.");
            return ExitCodes.Ok;
        }, ct));
        return cmd;
    }
}
