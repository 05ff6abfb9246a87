using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Npgsql;
using Workers.Cli.Hosting;
using Hangfire.Common;
using Microsoft.Extensions.DependencyInjection;
using Workers.Core.Options;
using Workers.Dashboard;
using Workers.Dashboard.Enqueue;
using Workers.Postgres.Corpora;
using Workers.Postgres.Dashboard;

namespace Workers.Cli.Bench;

/// <summary>
/// `workers bench dashboard`: page latency at the scale of issue 5. A 27,000-hour, 400,000-file
/// manifest corpus (about 58,000 shards) is enqueued through the dashboard's Hangfire enqueue job
/// (timed: issue 12 wants it under 60 s), then put in a mid-run state by set-based SQL:
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
        // The manifest lies in a folder of its own, the dashboard's only Corpus:AllowedRoots.
        var dir = Directory.CreateTempSubdirectory("workers-bench-").FullName;
        long? corpusId = null;
        try
        {
            var manifest = Path.Combine(dir, name + ".jsonl");
            await BenchCommand.WriteManifestAsync(manifest, fileCount, hours);
            await using var app = DashboardApp.Build(
                new DashboardHost(db, ctx.Queue, ctx.Time, new DashboardOptions()) { Corpus = new CorpusOptions { AllowedRoots = [dir] } },
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
                if (corpusId is { } id) await new CorpusAdmin(db, ctx.Time).DeleteAsync(id, CancellationToken.None);
                await using var del = db.CreateCommand("DELETE FROM workers WHERE id LIKE 'bench-node%'; DELETE FROM gpu_telemetry WHERE node LIKE 'bench-node%'");
                await del.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
        return ExitCodes.Ok;
    }

    /// <summary>
    /// The same manifest as `workers bench enqueue`, enqueued as the Enqueue page's confirm does: the
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
                        await using (var cmd = db.CreateCommand("SELECT id FROM corpora WHERE name = @n"))
                        {
                            cmd.Parameters.AddWithValue("n", name);
                            return ((long)(await cmd.ExecuteScalarAsync(ct))!, SerializationHelper.Deserialize<string>(done.Data["Result"]));
                        }
                    case { Name: "Failed" or "Deleted" or "Scheduled" } other:
                        throw new InvalidOperationException($"The bench's enqueue job {jobId} ended {other.Name}: {other.Reason} " +
                                                            string.Join(" ", other.Data.Select(kv => $"{kv.Key}={kv.Value}")));
                }
            await Task.Delay(100, ct);
        }
    }

    private sealed record Seeded(long Shards, long Succeeded, long Running, long Dead, long Segments, long FileFailures, int Workers, long SampleShard, long SampleDead, long MidShard);

    /// <summary>A mid-run state, written with set-based statements (bench data, not a code path of the product).</summary>
    private static async Task<Seeded> SeedStateAsync(NpgsqlDataSource db, long corpusId, CancellationToken ct)
    {
        const string sql = """
            -- 40% succeeded, finished over the last hour, one succeeded attempt each.
            UPDATE shards SET state = 'succeeded', attempt = 1, processed_seconds = audio_seconds, segments = 20,
                   started_at = now() - interval '2 hours', finished_at = now() - (ordinal % 3600) * interval '1 second'
            WHERE corpus_id = @c AND ordinal < @succ;
            -- 200 running, leased by bench workers.
            UPDATE shards SET state = 'running', attempt = 1, lease_owner = 'bench-node' || lpad((ordinal % 25)::text, 2, '0') || '/1234/' || (ordinal % 8),
                   lease_expires_at = now() + interval '5 minutes', heartbeat_at = now(), started_at = now() - interval '10 minutes',
                   processed_seconds = audio_seconds / 2
            WHERE corpus_id = @c AND ordinal >= @succ AND ordinal < @succ + 200;
            -- 600 dead after three failed attempts.
            UPDATE shards SET state = 'dead', attempt = 3, last_error = 'OnnxRuntimeException: CUDA failure 2: out of memory (bench)',
                   started_at = now() - interval '1 hour', finished_at = now() - (ordinal % 3000) * interval '1 second'
            WHERE corpus_id = @c AND ordinal >= @succ + 200 AND ordinal < @succ + 800;

            INSERT INTO shard_attempts (shard_id, attempt, worker, node, gpu, execution_provider, started_at, finished_at, outcome)
            SELECT id, 1, 'bench-node' || lpad((ordinal % 25)::text, 2, '0') || '/1234/' || (ordinal % 8), 'bench-node' || lpad((ordinal % 25)::text, 2, '0'),
                   (ordinal % 8)::text, 'CUDAExecutionProvider', started_at, finished_at, 'succeeded'
            FROM shards WHERE corpus_id = @c AND state = 'succeeded';
            INSERT INTO shard_attempts (shard_id, attempt, worker, node, gpu, execution_provider, started_at, outcome)
            SELECT id, 1, lease_owner, split_part(lease_owner, '/', 1), (ordinal % 8)::text, 'CUDAExecutionProvider', started_at, 'running'
            FROM shards WHERE corpus_id = @c AND state = 'running';
            INSERT INTO shard_attempts (shard_id, attempt, worker, node, gpu, execution_provider, started_at, finished_at, outcome,
                                        error_type, error_message, error_stack, log_tail)
            SELECT s.id, a, 'bench-node' || lpad(((s.ordinal + a) % 25)::text, 2, '0') || '/1234/' || (s.ordinal % 8),
                   'bench-node' || lpad(((s.ordinal + a) % 25)::text, 2, '0'), (s.ordinal % 8)::text, 'CUDAExecutionProvider',
                   s.started_at, s.finished_at, 'failed', 'OnnxRuntimeException', 'CUDA failure 2: out of memory (bench)',
                   repeat('   at Workers.Onnx.OnnxSession.Run(...)' || chr(10), 30), repeat('log line' || chr(10), 50)
            FROM shards s CROSS JOIN generate_series(1, 3) a WHERE s.corpus_id = @c AND s.state = 'dead';

            -- 20 segments per succeeded shard, spread over its items.
            INSERT INTO segments (corpus_id, shard_id, file_index, start_seconds, end_seconds)
            SELECT @c, i.shard_id, i.file_index, i.start_seconds + g * 0.5, i.start_seconds + g * 0.5 + 0.25
            FROM shard_items i JOIN shards s ON s.id = i.shard_id AND s.state = 'succeeded' AND s.corpus_id = @c
            CROSS JOIN generate_series(0, 2) g
            WHERE i.ordinal < 7 AND i.end_seconds - i.start_seconds > 2;

            -- 2,000 files that failed while their (succeeded) shard was processed.
            INSERT INTO file_failures (corpus_id, file_index, shard_id, attempt, start_seconds, end_seconds, error, created_at)
            SELECT @c, i.file_index, i.shard_id, 1, i.start_seconds, i.end_seconds, 'invalid data found when processing input (bench)', now()
            FROM shard_items i JOIN shards s ON s.id = i.shard_id AND s.state = 'succeeded' AND s.corpus_id = @c
            WHERE i.ordinal = 0 AND s.ordinal % 10 = 0 LIMIT 2000;

            -- 200 workers on 25 nodes (8 GPU slots each), one slot on CPU, one crash-looping; their GPUs.
            INSERT INTO workers (id, node, pid, slot, gpu_index, gpu_uuid, gpu_name, execution_provider, threads, version, queues,
                                 state, started_at, heartbeat_at, current_shard, current_attempt, shards_completed, audio_seconds_done, last_rate, detail)
            SELECT 'bench-node' || lpad(n::text, 2, '0') || '/1234/' || g, 'bench-node' || lpad(n::text, 2, '0'), 1234, g, g::text,
                   'GPU-' || n || '-' || g, 'NVIDIA H100 80GB HBM3',
                   CASE WHEN n = 3 AND g = 5 THEN 'CPUExecutionProvider' ELSE 'CUDAExecutionProvider' END, 4, 'bench', ARRAY['default'],
                   CASE WHEN n = 4 AND g = 2 THEN 'crash_looping' ELSE 'running' END, now() - interval '3 hours', now() - interval '2 seconds',
                   NULL, NULL, 90, 90 * 1800.0, 1500.0, CASE WHEN n = 4 AND g = 2 THEN 'exited 3 times in 60 s: CUDA error (bench)' END
            FROM generate_series(0, 24) n CROSS JOIN generate_series(0, 7) g
            ON CONFLICT (id) DO NOTHING;
            INSERT INTO gpu_telemetry (node, gpu_index, gpu_uuid, gpu_name, utilization_percent, memory_used_mb, memory_total_mb, temperature_c, sampled_at)
            SELECT 'bench-node' || lpad(n::text, 2, '0'), g, 'GPU-' || n || '-' || g, 'NVIDIA H100 80GB HBM3', 85 + (g % 10), 30000, 81559, 60, now()
            FROM generate_series(0, 24) n CROSS JOIN generate_series(0, 7) g
            ON CONFLICT (node, gpu_index) DO NOTHING;
            ANALYZE;
            """;
        var shards = await ScalarAsync(db, "SELECT count(*) FROM shards WHERE corpus_id = @c", corpusId, ct);
        await using (var cmd = db.CreateCommand(sql))
        {
            cmd.CommandTimeout = 600;
            cmd.Parameters.AddWithValue("c", corpusId);
            cmd.Parameters.AddWithValue("succ", (int)(shards * 0.4));
            await cmd.ExecuteNonQueryAsync(ct);
        }
        long succeeded, running, dead;
        await using (var counts = db.CreateCommand(
            "SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state = 'dead') FROM shards WHERE corpus_id = @c"))
        {
            counts.Parameters.AddWithValue("c", corpusId);
            await using var r = await counts.ExecuteReaderAsync(ct);
            await r.ReadAsync(ct);
            (succeeded, running, dead) = (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
        }
        return new Seeded(
            shards, succeeded, running, dead,
            await ScalarAsync(db, "SELECT count(*) FROM segments WHERE corpus_id = @c", corpusId, ct),
            await ScalarAsync(db, "SELECT count(*) FROM file_failures WHERE corpus_id = @c", corpusId, ct),
            200,
            await ScalarAsync(db, "SELECT min(id) FROM shards WHERE corpus_id = @c AND state = 'succeeded'", corpusId, ct),
            await ScalarAsync(db, "SELECT min(id) FROM shards WHERE corpus_id = @c AND state = 'dead'", corpusId, ct),
            await ScalarAsync(db, "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM shards WHERE corpus_id = @c", corpusId, ct));
    }

    private static async Task<long> ScalarAsync(NpgsqlDataSource db, string sql, long corpusId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand(sql);
        cmd.Parameters.AddWithValue("c", corpusId);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct) ?? 0L, CultureInfo.InvariantCulture);
    }
}
