using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Npgsql;
using Workers.Cli.Hosting;
using Workers.Core.Corpora;
using Workers.Dashboard;
using Workers.Postgres.Corpora;
using Workers.Bench.Sql;

namespace Workers.Bench;

/// <summary>
/// `workers-bench dashboard`: page latency at the scale of issue 5. A 27,000-hour, 400,000-file
/// manifest corpus (about 58,000 shards) is enqueued, then put in a mid-run state by set-based SQL:
/// 40% of shards succeeded (attempts, segments), a few hundred running, 600 dead with three failed
/// attempts each, 2,000 failed files, 200 workers on 25 nodes with GPU telemetry. The dashboard runs
/// in this process on Kestrel (loopback, a free port) and every page and API is fetched through real
/// HTTP: a warm-up, then N timed requests each, Hangfire's pages and ours. The seeded corpus is
/// removed unless --keep.
/// </summary>
public static class DashboardBench
{
    public static Command Create()
    {
        var files = new Option<int>("--files") { Description = "Manifest lines of the seeded corpus.", DefaultValueFactory = _ => 400_000 };
        var hours = new Option<double>("--hours") { Description = "Audio hours of the seeded corpus.", DefaultValueFactory = _ => 27_000 };
        var requests = new Option<int>("--requests") { Description = "Timed requests per page.", DefaultValueFactory = _ => 20 };
        var keep = new Option<bool>("--keep") { Description = "Keep the seeded corpus and workers (to browse the dashboard at scale)." };
        var cmd = new Command("dashboard", "Page and API latency of the dashboard over a seeded 27,000-hour corpus (about 58,000 shards).") { files, hours, requests, keep };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync((ctx, ct) =>
            RunAsync(ctx, pr.GetValue(files), pr.GetValue(hours), pr.GetValue(requests), pr.GetValue(keep), ct), ct));
        return cmd;
    }

    private static async Task<int> RunAsync(CliContext ctx, int fileCount, double hours, int requests, bool keep, CancellationToken ct)
    {
        if (requests < 1) throw new ArgumentException("--requests must be at least 1");
        var db = await ctx.DatabaseAsync(ct);
        var name = $"bench-dashboard-{ctx.Time.GetUtcNow():yyyyMMddHHmmss}";
        var sw = Stopwatch.StartNew();
        var corpusId = await SeedCorpusAsync(ctx, db, name, fileCount, hours, ct);
        var seeded = await SeedStateAsync(db, corpusId, ct);
        Console.WriteLine($"seeded corpus '{name}': {seeded.Shards:N0} shards ({seeded.Succeeded:N0} succeeded, {seeded.Running:N0} running, {seeded.Dead:N0} dead), " +
                          $"{seeded.Segments:N0} segments, {seeded.FileFailures:N0} failed files, {seeded.Workers} workers, in {sw.Elapsed.TotalSeconds:0.0} s");
        try
        {
            await using var app = DashboardApp.Build(new DashboardHost(db, ctx.Queue, ctx.Time, new DashboardOptions()), ["http://127.0.0.1:0"],
                b => b.Logging.AddFilter("Microsoft.Hosting", LogLevel.Warning));
            await app.StartAsync(ct);
            var baseUrl = app.Urls.First();
            using var http = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromMinutes(2) };

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
            if (keep) Console.WriteLine($"kept corpus '{name}' and its bench workers (node00..node24)");
            else
            {
                await new CorpusAdmin(db, ctx.Time).DeleteAsync(corpusId, CancellationToken.None);
                await using var del = BenchSql.Command(db, "BenchWorkersDelete");
                await del.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
        return ExitCodes.Ok;
    }

    /// <summary>The same manifest as `workers-bench enqueue`, written through the real enqueue path.</summary>
    private static async Task<long> SeedCorpusAsync(CliContext ctx, NpgsqlDataSource db, string name, int fileCount, double hours, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("workers-bench-").FullName;
        try
        {
            var manifest = Path.Combine(dir, "manifest.jsonl");
            await BenchCommand.WriteManifestAsync(manifest, fileCount, hours);
            var plan = await EnqueuePlanner.PlanAsync(ManifestReader.Read(manifest), probe: null, 30 * 60, ct);
            return await new CorpusWriter(db, ctx.Time).WriteAsync(plan, new EnqueueRequest(name, MaxAttempts: ctx.Queue.MaxAttempts), ct);
        }
        finally { Directory.Delete(dir, true); }
    }

    private sealed record Seeded(long Shards, long Succeeded, long Running, long Dead, long Segments, long FileFailures, int Workers, long SampleShard, long SampleDead, long MidShard);

    /// <summary>A mid-run state, written with set-based statements (bench data, not a code path of the product).</summary>
    private static async Task<Seeded> SeedStateAsync(NpgsqlDataSource db, long corpusId, CancellationToken ct)
    {
        long shards;
        await using (var count = BenchSql.Command(db, "ShardsCount"))
        {
            count.Parameters.AddWithValue("c", corpusId);
            shards = (long)(await count.ExecuteScalarAsync(ct))!;
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
        await using var r = await counts.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        long Get(string column) => r.GetInt64(r.GetOrdinal(column));
        return new Seeded(
            Get("shards"), Get("succeeded"), Get("running"), Get("dead"), Get("segments"), Get("file_failures"),
            200, Get("sample_shard"), Get("sample_dead"), Get("mid_shard"));
    }
}
