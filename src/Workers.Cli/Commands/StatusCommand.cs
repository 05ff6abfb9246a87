using System.CommandLine;
using Workers.Cli.Hosting;
using Workers.Postgres.Corpora;

namespace Workers.Cli.Commands;

public static class StatusCommand
{
    public static Command Create()
    {
        var corpus = new Argument<string?>("CORPUS") { Description = "A corpus name; all corpora when left out.", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var cmd = new Command("status", "Progress of one corpus or all: files, hours, shards by state, segments, failed files.") { corpus, json };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync(async (ctx, ct) =>
        {
            var reader = new CorpusStatusReader(await ctx.DatabaseAsync(ct));
            var name = pr.GetValue(corpus);
            var statuses = new List<CorpusStatus>();
            if (name is not null) statuses.Add(await reader.GetStatusAsync(name, ct));
            else foreach (var c in await reader.ListAsync(ct)) statuses.Add(await reader.GetStatusAsync(c, ct));

            if (pr.GetValue(json))
            {
                var docs = statuses.Select(ToJson).ToList();
                Json.Write(name is not null ? docs[0] : new { corpora = docs });
            }
            else if (statuses.Count == 0) Console.WriteLine("No corpora yet. Enqueue one: workers enqueue PATH --name NAME");
            else foreach (var s in statuses) Print(s);
            return ExitCodes.Ok;
        }, ct));
        return cmd;
    }

    public static object ToJson(CorpusStatus s) => new
    {
        name = s.Corpus.Name,
        id = s.Corpus.Id,
        source = s.Corpus.Source,
        pipeline = s.Corpus.Pipeline,
        queue = s.Corpus.Queue,
        priority = s.Corpus.Priority,
        files = s.Corpus.Files,
        audio_seconds = s.Corpus.AudioSeconds,
        processed_seconds = s.ProcessedSeconds,
        progress = s.Corpus.AudioSeconds > 0 ? s.ProcessedSeconds / s.Corpus.AudioSeconds : 0,
        shards = s.ShardsByState,
        segments = s.Segments,
        failed_files_total = s.FailedFilesTotal,
        failed_files = s.FailedFiles.Select(f => new { file = f.File, error = f.Error }),
        cancelled = s.Corpus.CancelledAt is not null,
        created_at = s.Corpus.CreatedAt,
    };

    private static void Print(CorpusStatus s)
    {
        var c = s.Corpus;
        var pct = c.AudioSeconds > 0 ? 100 * s.ProcessedSeconds / c.AudioSeconds : 0;
        Console.WriteLine($"{c.Name}{(c.CancelledAt is null ? "" : " (cancelled)")}");
        Console.WriteLine($"  files      {c.Files:N0}   audio {c.AudioSeconds / 3600:N2} h   processed {s.ProcessedSeconds / 3600:N2} h ({pct:0.0}%)");
        Console.WriteLine($"  shards     {string.Join("  ", s.ShardsByState.Select(kv => $"{kv.Key} {kv.Value:N0}"))}");
        Console.WriteLine($"  segments   {s.Segments:N0}");
        Console.WriteLine($"  failed     {s.FailedFilesTotal:N0} files");
        foreach (var f in s.FailedFiles.Take(10)) Console.WriteLine($"    {f.File}: {f.Error}");
        if (s.FailedFilesTotal > 10) Console.WriteLine($"    ... (workers status {c.Name} --json lists up to {CorpusStatusReader.MaxFailedFilesListed})");
    }
}
