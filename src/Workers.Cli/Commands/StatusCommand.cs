using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Options;
using Workers.Cli.Hosting;
using Workers.Core.Naming;
using Workers.Core.Options;
using Workers.Postgres.Corpora;
using Workers.Postgres.Fleet;

namespace Workers.Cli.Commands;

public static class StatusCommand
{
    public static Command Create()
    {
        var corpus = new Argument<string?>("CORPUS") { Description = "A corpus name; all corpora when left out.", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var fleet = new Option<bool>("--fleet") { Description = "The fleet instead: worker processes (heartbeat, provider, shard, work done) and GPU telemetry." };
        var cmd = new Command("status", "Progress of one corpus or all: files, hours, shards by state, segments, failed files. With --fleet: workers and GPUs.") { corpus, json, fleet };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync<Handler>((h, ct) => pr.GetValue(fleet)
            ? h.FleetAsync(pr.GetValue(corpus), pr.GetValue(json), ct)
            : h.CorporaAsync(pr.GetValue(corpus), pr.GetValue(json), ct), ct));
        return cmd;
    }

    /// <summary>`workers status`: the database, the Queue options (staleness, clock skew) and the clock.</summary>
    public sealed class Handler(WorkersDatabase database, IOptions<QueueOptions> queue, TimeProvider time)
    {
        public async Task<int> CorporaAsync(string? name, bool json, CancellationToken ct)
        {
            var db = await database.OpenAsync(ct);
            var reader = new CorpusStatusReader(db);
            var statuses = new List<CorpusStatus>();
            if (name is not null) statuses.Add(await reader.GetStatusAsync(name, ct));
            else foreach (var c in await reader.ListAsync(ct)) statuses.Add(await reader.GetStatusAsync(c, ct));

            // Queued shards of pipelines no running worker serves (issue 15): they wait until a worker loads that pipeline.
            var unservable = await new Workers.Postgres.Dashboard.StageReader(db, time, queue.Value).UnservableAsync(ct);
            var waiting = unservable.Select(u => u.Pipeline).ToHashSet(StringComparer.Ordinal);
            if (json)
            {
                var docs = statuses.Select(s => ToJson(s, waiting.Contains(s.Corpus.Pipeline))).ToList();
                Json.Write(name is not null ? docs[0] : new
                {
                    corpora = docs,
                    unservable = unservable.Select(u => new { pipeline = u.Pipeline, shards = u.Shards, audio_seconds = u.AudioSeconds }),
                });
            }
            else if (statuses.Count == 0) Console.WriteLine("No corpora yet. Enqueue one: workers enqueue PATH --name NAME");
            else
            {
                foreach (var s in statuses) Print(s);
                foreach (var u in unservable.Where(u => statuses.Any(s => s.Corpus.Pipeline == u.Pipeline)))
                    Console.WriteLine($"waiting: {u.Shards:N0} queued shard(s) ({u.AudioSeconds / 3600:N2} h) of pipeline '{Names.Printable(u.Pipeline)}': " +
                        "no running worker serves it. Start workers that load it (Fleet:Pipelines, or leave Fleet:Pipelines unset to load every configured pipeline).");
            }
            return ExitCodes.Ok;
        }

        public async Task<int> FleetAsync(string? corpus, bool json, CancellationToken ct)
        {
            if (corpus is { } c) throw new ArgumentException($"--fleet lists workers and GPUs, not a corpus: leave out '{Names.Printable(c)}'.");
            var registry = new WorkerRegistry(await database.OpenAsync(ct), time);
            var now = time.GetUtcNow().UtcDateTime;
            var workers = await registry.ListAsync(ct);
            var gpus = await registry.ListGpusAsync(ct);
            var staleAfter = WorkerRegistry.StaleAfter(queue.Value);
            if (json)
            {
                Json.Write(new { workers = workers.Select(w => WorkerJson(w, staleAfter)), gpus = gpus.Select(g => GpuJson(g, now)) });
                return ExitCodes.Ok;
            }
            PrintFleet(workers, gpus, staleAfter, queue.Value.ClockSkewWarn, now);
            return ExitCodes.Ok;
        }
    }

    /// <param name="pipelineWithoutWorker">No running worker serves the corpus's pipeline: its queued shards wait.</param>
    public static object ToJson(CorpusStatus s, bool pipelineWithoutWorker = false) => new
    {
        name = s.Corpus.Name,
        id = s.Corpus.Id,
        source = s.Corpus.Source,
        pipeline = s.Corpus.Pipeline,
        pipeline_without_worker = pipelineWithoutWorker,
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

    private static void PrintFleet(IReadOnlyList<WorkerRow> workers, IReadOnlyList<GpuSample> gpus, TimeSpan staleAfter, TimeSpan clockSkewWarn, DateTime now)
    {
        Console.WriteLine($"Workers ({workers.Count}; running or stopped within the last hour; stale = running but no heartbeat for over {staleAfter.TotalSeconds:0} s)");
        if (workers.Count == 0) Console.WriteLine("  none. Start some: workers run");
        else
            PrintTable(["ID", "NODE", "SLOT", "GPU", "PROVIDER", "STATE", "HEARTBEAT", "CLOCK", "SHARD", "DONE", "AUDIO H", "RATE", ""],
                workers.Select(w => new[]
                {
                    w.Id, w.Node, w.Slot.ToString(CultureInfo.InvariantCulture), w.GpuIndex ?? "cpu", w.ExecutionProvider,
                    w.StateAt(staleAfter), Age(w.HeartbeatAge), ClockOffset(w, clockSkewWarn), w.CurrentShard?.ToString(CultureInfo.InvariantCulture) ?? "-",
                    w.ShardsCompleted.ToString("N0", CultureInfo.InvariantCulture), (w.AudioSecondsDone / 3600).ToString("N2", CultureInfo.InvariantCulture),
                    w.LastRate is { } r ? r.ToString("0.#", CultureInfo.InvariantCulture) + "x" : "-",
                    (w.GpuSlotOnCpu ? "GPU SLOT ON CPU" : "") + (w.Detail is { Length: > 0 } d ? (w.GpuSlotOnCpu ? "; " : "") + d : ""),
                }));
        Console.WriteLine();
        Console.WriteLine($"GPUs ({gpus.Count})");
        if (gpus.Count == 0) Console.WriteLine("  no telemetry yet (`workers run` samples every GPU it finds every Fleet:TelemetrySeconds)");
        else
            PrintTable(["NODE", "GPU", "NAME", "UTIL", "MEMORY", "TEMP", "SAMPLED"],
                gpus.Select(g => new[]
                {
                    g.Node, g.Index.ToString(CultureInfo.InvariantCulture), g.Name,
                    g.UtilizationPercent is { } u ? u.ToString("0", CultureInfo.InvariantCulture) + "%" : "n/a",
                    $"{Mb(g.MemoryUsedMb)} / {Mb(g.MemoryTotalMb)} MiB",
                    g.TemperatureC is { } t ? t.ToString("0", CultureInfo.InvariantCulture) + " C" : "n/a",
                    Age(now - g.SampledAt) + " ago",
                }));
    }

    /// <summary>The worker's clock offset from the database's ("+3.0 s"), flagged "SKEWED" beyond Queue:ClockSkewWarnSeconds.</summary>
    public static string ClockOffset(WorkerRow w, TimeSpan warnAbove) =>
        w.ClockOffsetMs is not { } ms ? "-"
        : (ms / 1000).ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + " s" + (w.ClockSkewed(warnAbove) ? " SKEWED" : "");

    public static object WorkerJson(WorkerRow w, TimeSpan staleAfter) => new
    {
        id = w.Id,
        node = w.Node,
        pid = w.Pid,
        slot = w.Slot,
        gpu_index = w.GpuIndex,
        gpu_uuid = w.GpuUuid,
        gpu_name = w.GpuName,
        execution_provider = w.ExecutionProvider,
        gpu_slot_on_cpu = w.GpuSlotOnCpu,
        threads = w.Threads,
        version = w.Version,
        state = w.StateAt(staleAfter),
        registered_state = w.State,
        started_at = w.StartedAt,
        heartbeat_at = w.HeartbeatAt,
        heartbeat_age_seconds = Math.Round(w.HeartbeatAge.TotalSeconds, 1),
        clock_offset_ms = w.ClockOffsetMs is { } offset ? Math.Round(offset, 1) : (double?)null,
        clock_checked_at = w.ClockCheckedAt,
        stopped_at = w.StoppedAt,
        current_shard = w.CurrentShard,
        shards_completed = w.ShardsCompleted,
        audio_seconds_done = w.AudioSecondsDone,
        audio_hours = w.AudioSecondsDone / 3600,
        last_rate = w.LastRate,
        detail = w.Detail,
    };

    public static object GpuJson(GpuSample g, DateTime now) => new
    {
        node = g.Node,
        index = g.Index,
        uuid = g.Uuid,
        name = g.Name,
        utilization_percent = g.UtilizationPercent,
        memory_used_mb = g.MemoryUsedMb,
        memory_total_mb = g.MemoryTotalMb,
        temperature_c = g.TemperatureC,
        sampled_at = g.SampledAt,
        sample_age_seconds = Math.Round((now - g.SampledAt).TotalSeconds, 1),
    };

    private static string Mb(double? mb) => mb is { } m ? m.ToString("N0", CultureInfo.InvariantCulture) : "n/a";

    private static string Age(TimeSpan age) =>
        age < TimeSpan.Zero ? "0s"
        : age.TotalSeconds < 120 ? $"{age.TotalSeconds:0}s"
        : age.TotalMinutes < 120 ? $"{age.TotalMinutes:0}m"
        : $"{age.TotalHours:0.#}h";

    private static void PrintTable(string[] header, IEnumerable<string[]> rows)
    {
        // Names, nodes and details come from the database: escaped so none can drive the terminal (issue 13).
        var all = rows.Prepend(header).Select(r => r.Select(Names.Printable).ToArray()).ToList();
        var widths = header.Select((_, i) => all.Max(r => r[i].Length)).ToArray();
        foreach (var r in all)
            Console.WriteLine(("  " + string.Join("  ", r.Select((c, i) => i == r.Length - 1 ? c : c.PadRight(widths[i])))).TrimEnd());
    }

    private static void Print(CorpusStatus s)
    {
        var c = s.Corpus;
        var pct = c.AudioSeconds > 0 ? 100 * s.ProcessedSeconds / c.AudioSeconds : 0;
        // Names, paths and errors are escaped: a file name holding ESC or U+202E must not drive the terminal (issue 13).
        Console.WriteLine($"{Names.Printable(c.Name)}{(c.CancelledAt is null ? "" : " (cancelled)")}");
        Console.WriteLine($"  files      {c.Files:N0}   audio {c.AudioSeconds / 3600:N2} h   processed {s.ProcessedSeconds / 3600:N2} h ({pct:0.0}%)");
        Console.WriteLine($"  shards     {string.Join("  ", s.ShardsByState.Select(kv => $"{kv.Key} {kv.Value:N0}"))}");
        Console.WriteLine($"  segments   {s.Segments:N0}");
        Console.WriteLine($"  failed     {s.FailedFilesTotal:N0} files");
        foreach (var f in s.FailedFiles.Take(10)) Console.WriteLine($"    {Names.Printable(f.File)}: {Names.Printable(f.Error)}");
        if (s.FailedFilesTotal > 10) Console.WriteLine($"    ... (workers status {Names.Printable(c.Name)} --json lists up to {CorpusStatusReader.MaxFailedFilesListed})");
    }
}
