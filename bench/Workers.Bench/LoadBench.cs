using System.Collections.Concurrent;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using Workers.Cli.Hosting;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Postgres.Corpora;
using Workers.Postgres.Queue;
using Workers.Bench.Sql;
using Workers.Postgres.Sql;

namespace Workers.Bench;

/// <summary>
/// `workers-bench load`: many simulated workers in one process against the real queue. Each
/// worker has its own identity and loops claim (1 shard) -> heartbeat while a sleeping stage runs
/// -> complete (one segment), until nothing is left to claim. Reports throughput, claim and
/// complete latency, lease losses, the peak number of server connections, and checks that every
/// shard succeeded exactly once (exit 1 otherwise).
/// Hosted like a `workers` command: the database, the Queue options the simulated workers start from, and the clock, by constructor.
/// </summary>
public sealed class LoadBench(WorkersDatabase database, IOptions<QueueOptions> queueOptions, TimeProvider time)
{
    /// <summary>Connections beyond W * connections-per-worker that the run may hold (sampler, checks, migrations).</summary>
    public const int Headroom = 10;

    public sealed record Settings(int Workers, int Shards, int WorkMs, int ConnectionsPerWorker, int LeaseSeconds, int HeartbeatSeconds);

    public static Command Create()
    {
        var workers = new Option<int>("--workers") { Description = "Simulated workers (each its own identity).", DefaultValueFactory = _ => 200 };
        var shards = new Option<int>("--shards") { Description = "Shards in the synthetic corpus.", DefaultValueFactory = _ => 20_000 };
        var workMs = new Option<int>("--work-ms") { Description = "Mean time the simulated stage sleeps per shard (jitter ±50%).", DefaultValueFactory = _ => 20 };
        var perWorker = new Option<int>("--connections-per-worker") { Description = "Pool size per worker: the pool holds workers * this + a few.", DefaultValueFactory = _ => 1 };
        var lease = new Option<int>("--lease-seconds") { Description = "Lease length for this run.", DefaultValueFactory = _ => 30 };
        var heartbeat = new Option<int>("--heartbeat-seconds") { Description = "Heartbeat interval for this run.", DefaultValueFactory = _ => 5 };
        var load = new Command("load", "Many in-process workers (claim, heartbeat, complete) against one queue: throughput, latency, connections, and an exactly-once check.")
        {
            workers, shards, workMs, perWorker, lease, heartbeat,
        };
        load.SetAction((pr, ct) => CommandRunner.RunAsync<LoadBench>((h, ct) => h.RunAsync(new Settings(
            pr.GetValue(workers), pr.GetValue(shards), pr.GetValue(workMs), pr.GetValue(perWorker),
            pr.GetValue(lease), pr.GetValue(heartbeat)), ct), ct));
        return load;
    }

    public async Task<int> RunAsync(Settings s, CancellationToken ct)
    {
        if (s.Workers < 1) throw new ArgumentException($"--workers must be at least 1 (is {s.Workers}).");
        if (s.Shards < 1) throw new ArgumentException($"--shards must be at least 1 (is {s.Shards}).");
        if (s.WorkMs < 0) throw new ArgumentException($"--work-ms must be >= 0 (is {s.WorkMs}).");
        if (s.ConnectionsPerWorker < 1) throw new ArgumentException($"--connections-per-worker must be at least 1 (is {s.ConnectionsPerWorker}).");
        var options = new QueueOptions
        {
            LeaseSeconds = s.LeaseSeconds,
            HeartbeatSeconds = s.HeartbeatSeconds,
            MaxAttempts = queueOptions.Value.MaxAttempts,
            RetryBaseSeconds = queueOptions.Value.RetryBaseSeconds,
            RetryMaxSeconds = queueOptions.Value.RetryMaxSeconds,
            RetryJitter = queueOptions.Value.RetryJitter,
            RescueIntervalSeconds = queueOptions.Value.RescueIntervalSeconds,
            PollSeconds = queueOptions.Value.PollSeconds,
        };
        if (options.Validate() is { Count: > 0 } problems)
            throw new ArgumentException(string.Join(" ", problems).Replace("Queue:LeaseSeconds", "--lease-seconds").Replace("Queue:HeartbeatSeconds", "--heartbeat-seconds"));

        var control = await database.OpenAsync(ct); // migrated
        int maxConnections;
        await using (var cmd = BenchSql.Command(control, "MaxConnectionsShow"))
            maxConnections = await MaxConnections.SingleAsync(cmd, ct);
        var poolSize = s.Workers * s.ConnectionsPerWorker;
        if (poolSize + Headroom > maxConnections)
        {
            Console.Error.WriteLine($"error: {s.Workers} workers x {s.ConnectionsPerWorker} connections + {Headroom} = {poolSize + Headroom} connections, " +
                $"but the server allows max_connections = {maxConnections}. Use fewer --workers or --connections-per-worker.");
            return ExitCodes.BadInput;
        }

        var connectionString = await database.ConnectionStringAsync(ct);
        var cs = new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = poolSize + 4, Timeout = 60 };
        await using var db = NpgsqlDataSource.Create(cs.ConnectionString);
        await using var samplerDb = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = 1 }.ConnectionString);

        var queueName = "bench-load-" + Guid.NewGuid().ToString("N")[..8];
        var files = Enumerable.Range(0, s.Shards).Select(i => new SourceFile($"f{i:0000000}.wav", 60)).ToList();
        var plan = await EnqueuePlanner.PlanAsync(new CorpusListing("manifest", "/bench/load.jsonl", "/bench", files, []), probe: null, 60, ct);
        var corpusId = await new CorpusWriter(control, time).WriteAsync(plan, new EnqueueRequest(queueName, Queue: queueName, MaxAttempts: options.MaxAttempts), ct);
        try
        {
            var queue = new ShardQueue(db, options, time);
            Console.WriteLine($"load: {s.Workers} workers, {plan.ShardCount:N0} shards, stage {s.WorkMs} ms ±50%, lease {s.LeaseSeconds} s, heartbeat {s.HeartbeatSeconds} s, " +
                $"pool {cs.MaxPoolSize} ({s.ConnectionsPerWorker}/worker), server max_connections {maxConnections}");

            var claimMs = new List<double>[s.Workers];
            var completeMs = new List<double>[s.Workers];
            var completions = new ConcurrentDictionary<long, int>();
            var leaseLosses = 0;
            var heartbeats = 0;
            var failedHeartbeats = 0;

            using var stopSampling = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var sampler = SamplePeakConnectionsAsync(samplerDb, stopSampling.Token);

            var sw = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, s.Workers).Select(w => Task.Run(async () =>
            {
                var claims = claimMs[w] = new List<double>(s.Shards / s.Workers + 16);
                var completes = completeMs[w] = new List<double>(s.Shards / s.Workers + 16);
                var who = new WorkerIdentity($"bench-load-{w}", Environment.MachineName);
                var rng = new Random(w);
                while (true)
                {
                    var t = Stopwatch.GetTimestamp();
                    var got = await queue.ClaimAsync(who, [queueName], 1, ct);
                    claims.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                    if (got.Count == 0) return;
                    var shard = got[0];

                    // The stage (sleep) runs while a heartbeat keeps the lease; a lost lease stops the stage.
                    using var stage = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    var lost = false;
                    var beat = Task.Run(async () =>
                    {
                        try
                        {
                            while (true)
                            {
                                await Task.Delay(options.Heartbeat, stage.Token);
                                Interlocked.Increment(ref heartbeats);
                                if (!await queue.HeartbeatAsync(shard, who, 0, stage.Token))
                                {
                                    Interlocked.Increment(ref failedHeartbeats);
                                    lost = true;
                                    await stage.CancelAsync();
                                    return;
                                }
                            }
                        }
                        catch (OperationCanceledException) when (stage.IsCancellationRequested) { }
                    }, CancellationToken.None);
                    try
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(s.WorkMs * (0.5 + rng.NextDouble())), stage.Token);
                    }
                    catch (OperationCanceledException) when (lost) { }
                    await stage.CancelAsync();
                    await beat;
                    ct.ThrowIfCancellationRequested();
                    if (lost)
                    {
                        Interlocked.Increment(ref leaseLosses);
                        continue;
                    }

                    t = Stopwatch.GetTimestamp();
                    var ok = await queue.CompleteAsync(shard, who, [new SegmentRow(0, 0, 1)], ct: ct);
                    completes.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                    if (ok) completions.AddOrUpdate(shard.Id, 1, (_, n) => n + 1);
                    else Interlocked.Increment(ref leaseLosses);
                }
            }, ct)));
            sw.Stop();
            await stopSampling.CancelAsync();
            var peak = await sampler;

            var check = await CheckAsync(control, corpusId, ct);
            var clientDoubles = completions.Count(kv => kv.Value > 1);
            var completed = completions.Values.Sum();

            var claimsAll = claimMs.SelectMany(l => l).Order().ToArray();
            var completesAll = completeMs.SelectMany(l => l).Order().ToArray();
            var rows = new List<(string, string)>
            {
                ("workers", s.Workers.ToString(CultureInfo.InvariantCulture)),
                ("shards", plan.ShardCount.ToString(CultureInfo.InvariantCulture)),
                ("completed", completed.ToString(CultureInfo.InvariantCulture)),
                ("wall time", $"{sw.Elapsed.TotalSeconds:0.00} s"),
                ("throughput", $"{completed / sw.Elapsed.TotalSeconds:0} shards/s"),
                ("claims", claimsAll.Length.ToString(CultureInfo.InvariantCulture)),
                ("claim ms p50/p90/p99/max", Percentiles(claimsAll)),
                ("complete ms p50/p90/p99/max", Percentiles(completesAll)),
                ("heartbeats (failed)", $"{heartbeats} ({failedHeartbeats})"),
                ("lease losses", leaseLosses.ToString(CultureInfo.InvariantCulture)),
                ("succeeded exactly once", $"{check.SucceededOnce} of {plan.ShardCount}"),
                ("shards not succeeded", check.NotSucceeded.ToString(CultureInfo.InvariantCulture)),
                ("double executions", (check.Doubles + clientDoubles).ToString(CultureInfo.InvariantCulture)),
                ("segments written", check.Segments.ToString(CultureInfo.InvariantCulture)),
                ("pool max size", cs.MaxPoolSize.ToString(CultureInfo.InvariantCulture)),
                ("peak connections (server)", peak.ToString(CultureInfo.InvariantCulture)),
                ("peak connections/worker", $"{(double)peak / s.Workers:0.00}"),
            };
            var width = rows.Max(r => r.Item1.Length);
            Console.WriteLine($"  {"measure".PadRight(width)}  value");
            Console.WriteLine($"  {new string('-', width)}  {new string('-', 24)}");
            foreach (var (k, v) in rows) Console.WriteLine($"  {k.PadRight(width)}  {v}");

            var failures = new List<string>();
            if (check.Doubles + clientDoubles > 0)
                failures.Add($"{check.Doubles} shard(s) have more than one succeeded attempt and {clientDoubles} were completed more than once by workers");
            if (check.SucceededOnce != plan.ShardCount || check.NotSucceeded > 0)
                failures.Add($"only {check.SucceededOnce} of {plan.ShardCount} shards succeeded exactly once ({check.NotSucceeded} not in state succeeded)");
            if (check.Segments != plan.ShardCount)
                failures.Add($"{check.Segments} segments were written for {plan.ShardCount} shards (one each expected)");
            if (failures.Count > 0)
            {
                Console.Error.WriteLine("error: exactly-once check failed: " + string.Join("; ", failures) + ".");
                return ExitCodes.Failure;
            }
            Console.WriteLine("  exactly-once check: ok (every shard succeeded once, none twice)");
            return ExitCodes.Ok;
        }
        finally
        {
            await new CorpusAdmin(control, time).DeleteAsync(corpusId, CancellationToken.None);
        }
    }

    private static string Percentiles(double[] sorted)
    {
        if (sorted.Length == 0) return "-";
        return string.Create(CultureInfo.InvariantCulture,
            $"{Percentile.Of(sorted, 0.5):0.00} / {Percentile.Of(sorted, 0.9):0.00} / {Percentile.Of(sorted, 0.99):0.00} / {sorted[^1]:0.00}");
    }

    private sealed record Check(long SucceededOnce, long Doubles, long NotSucceeded, long Segments);

    private static async Task<Check> CheckAsync(NpgsqlDataSource db, long corpusId, CancellationToken ct)
    {
        await using var cmd = BenchSql.Command(db, "LoadRunCheck");
        cmd.Parameters.AddWithValue("c", corpusId);
        cmd.CommandTimeout = 300;
        return await RunCheck.SingleAsync(cmd, ct);
    }

    /// <summary>Samples the connections open to this database every 200 ms; returns the peak (the sampler's own included).</summary>
    private static async Task<long> SamplePeakConnectionsAsync(NpgsqlDataSource db, CancellationToken ct)
    {
        long peak = 0;
        try
        {
            await using var conn = await db.OpenConnectionAsync(ct);
            await using var cmd = BenchSql.Command(conn, "ConnectionsCount");
            while (true)
            {
                peak = Math.Max(peak, await Connections.SingleAsync(cmd, ct));
                await Task.Delay(200, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return peak;
        }
    }

    private static readonly RowMap<int> MaxConnections = new("MaxConnectionsShow", c =>
    {
        var max = c.Column<int>("max_connections");
        return r => r.Get(max);
    });

    private static readonly RowMap<Check> RunCheck = new("LoadRunCheck", c =>
    {
        var succeededOnce = c.Column<long>("succeeded_once");
        var doubles = c.Column<long>("doubles");
        var notSucceeded = c.Column<long>("not_succeeded");
        var segments = c.Column<long>("segments");
        return r => new Check(r.Get(succeededOnce), r.Get(doubles), r.Get(notSucceeded), r.Get(segments));
    });

    private static readonly RowMap<long> Connections = new("ConnectionsCount", c =>
    {
        var connections = c.Column<long>("connections");
        return r => r.Get(connections);
    });
}
