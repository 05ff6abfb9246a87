using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Hangfire.Common;
using Microsoft.Extensions.DependencyInjection;
using Workers.Cli.Hosting;
using Workers.Core.Options;
using Workers.Dashboard;
using Workers.Dashboard.Enqueue;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;
using Workers.Bench.Sql;
using Workers.Postgres.Sql;

namespace Workers.Bench;

/// <summary>
/// `workers-bench dashboard`: page latency at the scale of issue 5. A 27,000-hour, 400,000-file
/// manifest corpus (about 58,000 shards) is enqueued through the dashboard's Hangfire enqueue job
/// (timed: issue 12 wants it under 60 s), then put in a mid-run state by set-based SQL:
/// 40% of shards succeeded (attempts, segments), a few hundred running, 600 dead with three failed
/// attempts each, 2,000 failed files, 200 workers on 25 nodes with GPU telemetry. The dashboard runs
/// in this process on Kestrel (loopback, a free port) and every page and API is fetched through real
/// HTTP: a warm-up, then N timed requests each, Hangfire's pages and ours. The seeded corpus is
/// removed unless --keep.
/// Hosted like a `workers` command: the database, the Queue options the dashboard is built with, and the clock, by constructor.
/// </summary>
public sealed class DashboardBench(WorkersDatabase database, IOptions<QueueOptions> queue, TimeProvider time)
{
    public static Command Create()
    {
        var files = new Option<int>("--files") { Description = "Manifest lines of the seeded corpus.", DefaultValueFactory = _ => 400_000 };
        var hours = new Option<double>("--hours") { Description = "Audio hours of the seeded corpus.", DefaultValueFactory = _ => 27_000 };
        var requests = new Option<int>("--requests") { Description = "Timed requests per page.", DefaultValueFactory = _ => 20 };
        var keep = new Option<bool>("--keep") { Description = "Keep the seeded corpus and workers (to browse the dashboard at scale)." };
        var cmd = new Command("dashboard", "Page and API latency of the dashboard over a seeded 27,000-hour corpus (about 58,000 shards).") { files, hours, requests, keep };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync<DashboardBench>((h, ct) =>
            h.RunAsync(pr.GetValue(files), pr.GetValue(hours), pr.GetValue(requests), pr.GetValue(keep), ct), ct));
        return cmd;
    }

    public async Task<int> RunAsync(int fileCount, double hours, int requests, bool keep, CancellationToken ct)
    {
        if (requests < 1) throw new ArgumentException("--requests must be at least 1");
        var db = await database.OpenAsync(ct);
        var name = $"bench-dashboard-{time.GetUtcNow():yyyyMMddHHmmss}";
        // The manifest lies in a folder of its own, the dashboard's only Corpus:AllowedRoots.
        var dir = Directory.CreateTempSubdirectory("workers-bench-").FullName;
        long? corpusId = null;
        try
        {
            var manifest = Path.Combine(dir, name + ".jsonl");
            await BenchCommand.WriteManifestAsync(manifest, fileCount, hours);
            await using var app = DashboardApp.Build(
                new DashboardHost(db, queue.Value, time, new DashboardOptions()) { Corpus = new CorpusOptions { AllowedRoots = [dir] } },
                ["http://127.0.0.1:0"], b => b.Logging.AddFilter("Microsoft.Hosting", LogLevel.Warning).AddFilter("Hangfire", LogLevel.Warning));
            await app.StartAsync(ct);
            var baseUrl = app.Urls.First();
            using var http = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromMinutes(2) };

            var sw = Stopwatch.StartNew();
            (corpusId, var result) = await EnqueueThroughJobAsync(app.Services, db, Path.GetFileName(manifest), name, ct);
            Console.WriteLine($"enqueued the {fileCount:N0}-file manifest through the dashboard's enqueue job (Hangfire, queue control) in {sw.Elapsed.TotalSeconds:0.0} s: {result}");
            sw.Restart();
            var seeded = await SeedStateAsync(db, corpusId.Value, ct);
            Console.WriteLine($"seeded corpus '{name}': {seeded.Shards:N0} shards ({seeded.Succeeded:N0} succeeded, {seeded.Running:N0} running, {seeded.Dead:N0} dead), " +
                              $"{seeded.Segments:N0} segments, {seeded.FileFailures:N0} failed files, {seeded.Workers} workers, in {sw.Elapsed.TotalSeconds:0.0} s");

            var aShard = seeded.SampleShard;
            var aDead = seeded.SampleDead;
            var e = Uri.EscapeDataString(name);
            string[] pages =
            [
                // Hangfire's own pages (its home carries our shard-count tiles), then ours inside its layout.
                "/", "/jobs/enqueued", "/jobs/succeeded", "/jobs/failed", "/recurring", "/servers", "/retries",
                "/corpora", "/api/corpora", "/shards", $"/shards?corpus={e}&state=dead", $"/shards?corpus={e}&file=utt0399",
                $"/shards?worker=node07%2F1234%2F3", $"/shards?after={seeded.MidShard}", $"/shards/{aShard}", $"/shards/{aDead}",
                $"/api/shards/{aShard}", "/failures", $"/failures?corpus={e}", "/fleet", "/api/fleet", "/audit", "/metrics",
                "/api/history?minutes=60", "/enqueue",
            ];
            Console.WriteLine($"dashboard at {baseUrl}; {requests} timed requests per page after one warm-up (ms)");
            Console.WriteLine($"  {"page",-58} {"status",6} {"p50",8} {"p95",8} {"max",8} {"bytes",9}");
            foreach (var page in pages)
            {
                using (var warm = await http.GetAsync(page, ct)) { }
                var ms = new double[requests];
                var status = HttpStatusCode.OK;
                long bytes = 0;
                for (var i = 0; i < requests; i++)
                {
                    var t = Stopwatch.GetTimestamp();
                    using var r = await http.GetAsync(page, ct);
                    var body = await r.Content.ReadAsByteArrayAsync(ct);
                    ms[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                    status = r.StatusCode;
                    bytes = body.Length;
                }
                Array.Sort(ms);
                Console.WriteLine($"  {page,-58} {(int)status,6} {Percentile.Of(ms, 0.50),8:0.0} {Percentile.Of(ms, 0.95),8:0.0} {ms[^1],8:0.0} {bytes,9:N0}");
            }
            await app.StopAsync(CancellationToken.None);
        }
        finally
        {
            Directory.Delete(dir, true);
            if (keep) Console.WriteLine($"kept corpus '{name}' and its bench workers (node00..node24)");
            else
            {
                if (corpusId is { } id) await new CorpusAdmin(db, time).DeleteAsync(id, CancellationToken.None);
                await using var del = BenchSql.Command(db, "BenchWorkersDelete");
                await del.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
        return ExitCodes.Ok;
    }

    /// <summary>
    /// The same manifest as `workers-bench enqueue`, enqueued as the Enqueue page's confirm does: the
    /// instant checks, then <see cref="EnqueueJob"/> on the dashboard's Hangfire server, waited for.
    /// </summary>
    private static async Task<(long CorpusId, string Result)> EnqueueThroughJobAsync(IServiceProvider services, NpgsqlDataSource db, string manifest,
        string name, CancellationToken ct)
    {
        var input = await services.GetRequiredService<DashboardEnqueue>().CheckAsync(new EnqueueInput(manifest, name), ct);
        var jobId = services.GetRequiredService<EnqueueJobs>().Start(input, new Actor("bench", null));
        var storage = services.GetRequiredService<Hangfire.JobStorage>();
        while (true)
        {
            using (var c = storage.GetConnection())
                switch (c.GetStateData(jobId))
                {
                    case { Name: "Succeeded" } done:
                        await using (var cmd = BenchSql.Command(db, "CorpusIdByName"))
                        {
                            cmd.Parameters.AddWithValue("name", name);
                            return (await CorpusId.SingleAsync(cmd, ct), SerializationHelper.Deserialize<string>(done.Data["Result"]));
                        }
                    case { Name: "Failed" or "Deleted" or "Scheduled" } other:
                        throw new InvalidOperationException($"The bench's enqueue job {jobId} ended {other.Name}: {other.Reason} " +
                                                            string.Join(" ", other.Data.Select(kv => $"{kv.Key}={kv.Value}")));
                }
            await Task.Delay(100, ct); // polls Hangfire's storage: the job runs on its server's own threads
        }
    }

    private sealed record Seeded(long Shards, long Succeeded, long Running, long Dead, long Segments, long FileFailures, int Workers, long SampleShard, long SampleDead, long MidShard);

    /// <summary>A mid-run state, written with set-based statements (bench data, not a code path of the product).</summary>
    private static async Task<Seeded> SeedStateAsync(NpgsqlDataSource db, long corpusId, CancellationToken ct)
    {
        long shards;
        await using (var count = BenchSql.Command(db, "ShardsCount"))
        {
            count.Parameters.AddWithValue("c", corpusId);
            shards = await ShardsCount.SingleAsync(count, ct);
        }
        await using (var cmd = BenchSql.Command(db, "BenchStateSeed"))
        {
            cmd.CommandTimeout = 600;
            cmd.Parameters.AddWithValue("c", corpusId);
            cmd.Parameters.AddWithValue("succ", (int)(shards * 0.4));
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await using var counts = BenchSql.Command(db, "BenchStateCount");
        counts.Parameters.AddWithValue("c", corpusId);
        return await StateCount.SingleAsync(counts, ct);
    }

    private static readonly RowMap<long> CorpusId = new("CorpusIdByName", c =>
    {
        var id = c.Column<long>("id");
        return r => r.Get(id);
    });

    private static readonly RowMap<long> ShardsCount = new("ShardsCount", c =>
    {
        var shards = c.Column<long>("shards");
        return r => r.Get(shards);
    });

    private static readonly RowMap<Seeded> StateCount = new("BenchStateCount", c =>
    {
        var shards = c.Column<long>("shards");
        var succeeded = c.Column<long>("succeeded");
        var running = c.Column<long>("running");
        var dead = c.Column<long>("dead");
        var segments = c.Column<long>("segments");
        var fileFailures = c.Column<long>("file_failures");
        var sampleShard = c.Column<long>("sample_shard");
        var sampleDead = c.Column<long>("sample_dead");
        var midShard = c.Column<long>("mid_shard");
        // 200 workers: what BenchStateSeed writes (25 nodes x 8 slots).
        return r => new Seeded(r.Get(shards), r.Get(succeeded), r.Get(running), r.Get(dead), r.Get(segments), r.Get(fileFailures),
            200, r.Get(sampleShard), r.Get(sampleDead), r.Get(midShard));
    });
}
