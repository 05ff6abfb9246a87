using Workers.Fleet.Supervisor;
using Workers.Cli.Commands;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Reflection;
using Npgsql;
using Workers.Audio;
using Workers.Audio.Synthesis;
using Workers.Cli.Hosting;
using Workers.Core.Corpora;
using Workers.Postgres.Cluster;
using Workers.Postgres.Corpora;
using Workers.Postgres.Migrations;
using Workers.Bench.Sql;
using Workers.Postgres.Sql;

namespace Workers.Bench;

/// <summary>
/// `workers-bench soak`: the fault mix of issue 6 for a chosen duration, against real processes
/// and the real database. A generated speech corpus is processed once without faults (the
/// reference), then again and again by <c>--nodes</c> supervisors (child processes of this
/// executable, short leases) while faults are injected at random intervals from a seeded
/// <see cref="Random"/>: SIGKILL of a worker, SIGKILL of a whole node (supervisor and its workers,
/// then a replacement supervisor for that node), SIGSTOP of a worker past its lease then SIGCONT,
/// <c>pg_terminate_backend</c> of a workers' connection, a node restarted with its clock 3 minutes
/// fast or slow (libfaketime, issue 11), and (embedded mode only) PostgreSQL stopped for a few
/// seconds and started again, and a failover: in embedded mode the soak runs on a primary and a
/// synchronous standby of its own (<see cref="SoakDatabasePair"/>) that every process reaches
/// through one two-host connection string. Once the time is up and the queue is idle, a summary
/// table is printed; exit 0 only with no duplicates, no lost audio seconds, and every soak
/// corpus's segments equal to the reference's.
/// Hosted like a `workers` command: the database service (configured server; without one, the soak's own pair) and the clock, by constructor.
/// </summary>
public sealed partial class SoakBench(WorkersDatabase database, TimeProvider time)
{
    public sealed record Settings(double Minutes, int Nodes, int WorkersPerNode, double CorpusHours, int? Seed, bool Keep);

    private const string KillWorker = "SIGKILL worker";
    private const string KillNode = "SIGKILL supervisor (whole node)";
    private const string StopWorker = "SIGSTOP worker past lease, SIGCONT";
    private const string TerminateBackend = "pg_terminate_backend";
    private const string RestartPostgres = "PostgreSQL stop/start";
    private const string ChangeFile = "file changed after enqueue";
    private const string SkewNode = "node restarted with clock -/+3 min";
    private const string Failover = "failover to the standby";

    /// <summary>Debian's libfaketime (package libfaketime, ops/setup.sh): shifts a node's wall clock, not its timers.</summary>
    private const string LibFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

    private const int LeaseSeconds = 6;

    public static Command Create()
    {
        var minutes = new Option<double>("--minutes") { Description = "How long faults are injected (the run then waits for the queue to be idle).", DefaultValueFactory = _ => 20 };
        var nodes = new Option<int>("--nodes") { Description = "Supervisors (nodes) running the soak corpora.", DefaultValueFactory = _ => 2 };
        var perNode = new Option<int>("--workers-per-node") { Description = "CPU worker processes per node.", DefaultValueFactory = _ => 2 };
        var hours = new Option<double>("--corpus-hours") { Description = "Audio hours in the generated corpus (a few long files).", DefaultValueFactory = _ => 1 };
        var seed = new Option<int?>("--seed") { Description = "Seed of the fault schedule (default: random, printed)." };
        var keep = new Option<bool>("--keep") { Description = "Keep the corpora in the database and the generated audio and logs." };
        var soak = new Command("soak", "Run the fault mix (worker/node SIGKILL, SIGSTOP past the lease, killed connections, skewed node clocks, PostgreSQL restarts and failovers) for a chosen time; prove nothing is lost or done twice.")
        {
            minutes, nodes, perNode, hours, seed, keep,
        };
        soak.SetAction((pr, ct) => CommandRunner.RunAsync<SoakBench>((h, ct) => h.RunAsync(new Settings(
            pr.GetValue(minutes), pr.GetValue(nodes), pr.GetValue(perNode), pr.GetValue(hours), pr.GetValue(seed), pr.GetValue(keep)), ct), ct));
        return soak;
    }

    public async Task<int> RunAsync(Settings s, CancellationToken ct)
    {
        if (!(s.Minutes > 0)) throw new ArgumentException($"--minutes must be positive (is {s.Minutes}).");
        if (s.Nodes < 1) throw new ArgumentException($"--nodes must be at least 1 (is {s.Nodes}).");
        if (s.WorkersPerNode < 1) throw new ArgumentException($"--workers-per-node must be at least 1 (is {s.WorkersPerNode}).");
        if (!(s.CorpusHours > 0 && s.CorpusHours <= 100)) throw new ArgumentException($"--corpus-hours must be within (0, 100] (is {s.CorpusHours}).");

        var seed = s.Seed ?? Random.Shared.Next();
        var rng = new Random(seed);
        var embedded = database.ConfiguredConnectionString is null;
        var dir = Directory.CreateTempSubdirectory("workers-soak-").FullName;
        SoakDatabasePair? pair = null;
        string baseCs;
        if (embedded)
        {
            // A primary and a synchronous standby of the soak's own (the postgres user must reach their folder).
            File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
            pair = await SoakDatabasePair.StartAsync(Path.Combine(dir, "pg"), ct);
            baseCs = pair.ConnectionString;
            await using var migrate = NpgsqlDataSource.Create(baseCs);
            await new MigrationRunner(migrate).MigrateAsync(ct: ct);
        }
        else
        {
            await database.OpenAsync(ct); // migrated
            baseCs = database.ConfiguredConnectionString!;
        }
        var runId = Guid.NewGuid().ToString("N")[..8];
        var appName = "workers-soak-" + runId;       // the workers' connections: pg_terminate_backend picks among these only
        var childCs = new NpgsqlConnectionStringBuilder(baseCs) { ApplicationName = appName }.ConnectionString;
        await using var db = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(baseCs) { ApplicationName = "workers-soak-control", MaxPoolSize = 4 }.ConnectionString);
        var queue = "soak-" + runId;

        var ok = false;
        var soakRun = new Run(time, s, db, childCs, queue, dir, rng, pair);
        try
        {
            Console.WriteLine($"soak: seed {seed}, {s.Minutes:0.##} min of faults, {s.Nodes} node(s) x {s.WorkersPerNode} CPU worker(s), " +
                $"lease {LeaseSeconds} s, heartbeat 2 s, queue '{queue}'");
            Console.WriteLine(embedded
                ? $"soak: database: a primary and a synchronous standby of its own under {dir}/pg, one two-host connection string (PostgreSQL stop/start and failover faults included)"
                : "soak: database: configured connection string; the PostgreSQL stop/start and failover faults are skipped (they need the soak's own clusters: run without a connection string)");
            if (!File.Exists(LibFaketime))
                Console.WriteLine($"soak: {LibFaketime} is missing (Debian package libfaketime, ops/setup.sh); the clock-skew fault is skipped");
            ok = await soakRun.ExecuteAsync(ct);
            return ok ? ExitCodes.Ok : ExitCodes.Failure;
        }
        finally
        {
            await soakRun.ShutdownAsync();
            if (!s.Keep) await soakRun.DeleteCorporaAsync();
            if (pair is not null && !s.Keep) await pair.DestroyAsync();
            if (ok && !s.Keep) TryDelete(dir);
            else Console.WriteLine($"soak: generated audio and node logs kept in {dir}");
        }
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private sealed class Run(TimeProvider time, Settings s, NpgsqlDataSource db, string childCs, string queue, string dir, Random rng, SoakDatabasePair? pair)
    {
        private readonly bool _embedded = pair is not null;
        private readonly Dictionary<string, Process> _nodes = [];
        // A node's clock offset (libfaketime), once the clock-skew fault gave it one: it survives the node's restarts,
        // as a wrong clock survives a reboot, until the fault picks that node again.
        private readonly Dictionary<string, string> _skew = [];
        private readonly Dictionary<string, int> _faults = new()
        {
            [KillWorker] = 0, [KillNode] = 0, [StopWorker] = 0, [TerminateBackend] = 0, [SkewNode] = 0, [RestartPostgres] = 0, [Failover] = 0, [ChangeFile] = 0,
        };
        private SoakChangedFiles? _changed;
        private readonly List<(long Id, string Name)> _soakCorpora = [];
        private long _referenceId;
        private int _stoppedPid;
        private DateTime _resumeAt;
        private int _nodeRestarts;
        private int _unexpectedExits;
        private bool _postgresDown;

        private string Corpus => Path.Combine(dir, "corpus");
        private string Logs => Path.Combine(dir, "logs");

        public async Task<bool> ExecuteAsync(CancellationToken ct)
        {
            Directory.CreateDirectory(Logs);
            var shardSeconds = Generate();
            var listing = FolderScanner.Scan(Corpus);
            var plan = await EnqueuePlanner.PlanAsync(listing, new AudioDurationProbe(), shardSeconds, ct);
            Console.WriteLine($"soak: corpus of {plan.FileCount} files, {plan.AudioSeconds / 3600:0.###} h, {plan.ShardCount} shards of about {shardSeconds / 60:0.#} min");
            // Faults cost attempts: a generous budget, so that a shard dies only if something is really wrong.
            async Task<long> EnqueueAsync(string name) =>
                await Retry(() => new CorpusWriter(db, time).WriteAsync(plan, new EnqueueRequest(name, Queue: queue, MaxAttempts: 1000), ct), ct);

            // The reference: one supervisor, no faults, until idle.
            var stamp = time.GetUtcNow().ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
            var refName = $"{queue}-reference-{stamp}";
            _referenceId = await EnqueueAsync(refName);
            Console.WriteLine($"soak: reference corpus '{refName}': 1 node, no faults ...");
            var sw = Stopwatch.StartNew();
            using (var reference = StartNode("soak-reference", untilIdle: true))
            {
                await reference.WaitForExitAsync(ct);
                if (reference.ExitCode != 0)
                {
                    Console.Error.WriteLine($"error: the reference run exited {reference.ExitCode}; see {Logs}/soak-reference.log");
                    return false;
                }
            }
            Console.WriteLine($"soak: reference done in {sw.Elapsed.TotalSeconds:0.0} s");

            // The soak: N nodes, faults at random intervals, a fresh copy of the corpus each time one finishes.
            var nodeNames = Enumerable.Range(0, s.Nodes).Select(i => $"soak-{(char)('a' + i % 26)}{(i >= 26 ? (i / 26).ToString(CultureInfo.InvariantCulture) : "")}").ToList();
            foreach (var n in nodeNames) _nodes[n] = StartNode(n, untilIdle: false);
            var kinds = new List<string> { KillWorker, KillNode, StopWorker, TerminateBackend, ChangeFile };
            if (File.Exists(LibFaketime)) kinds.Add(SkewNode);
            if (_embedded) kinds.AddRange([RestartPostgres, Failover]);
            _changed = new SoakChangedFiles(time, db, dir, queue, rng);

            var soakClock = Stopwatch.StartNew();
            var deadline = TimeSpan.FromMinutes(s.Minutes);
            var next = 1;
            _soakCorpora.Add((await EnqueueAsync($"{queue}-soak-{next}"), $"{queue}-soak-{next}"));
            var nextFault = soakClock.Elapsed + Interval();
            while (soakClock.Elapsed < deadline)
            {
                await Task.Delay(250, ct);
                await ResumeIfDueAsync();
                await KeepNodesUpAsync(ct);
                if (await Retry(() => OpenShardsAsync(_soakCorpora[^1].Id, ct), ct) == 0)
                {
                    next++;
                    var name = $"{queue}-soak-{next}";
                    _soakCorpora.Add((await EnqueueAsync(name), name));
                    Console.WriteLine($"soak: {soakClock.Elapsed.TotalSeconds,6:0.0} s  corpus {next - 1} done; enqueued '{name}'");
                }
                if (soakClock.Elapsed < nextFault) continue;
                var order = kinds.OrderBy(_ => rng.Next()).ToList();
                foreach (var kind in order)
                {
                    var what = await InjectAsync(kind, ct);
                    if (what is null) continue; // nothing to inject it on right now: try another kind
                    _faults[kind]++;
                    Console.WriteLine($"soak: {soakClock.Elapsed.TotalSeconds,6:0.0} s  {kind}: {what}");
                    break;
                }
                nextFault = soakClock.Elapsed + Interval();
            }
            var faultTime = soakClock.Elapsed;

            // Time is up: no more faults. Undo the last one still in effect and wait for the queue to drain.
            if (_stoppedPid != 0) { _resumeAt = DateTime.MinValue; await ResumeIfDueAsync(); }
            Console.WriteLine($"soak: {soakClock.Elapsed.TotalSeconds,6:0.0} s  faults over; waiting for the queue to be idle ...");
            var idleBy = Stopwatch.StartNew();
            var idleLimit = TimeSpan.FromMinutes(Math.Max(5, s.CorpusHours * 60));
            while (await Retry(() => OpenShardsInQueueAsync(ct), ct) > 0)
            {
                if (idleBy.Elapsed > idleLimit)
                {
                    Console.Error.WriteLine($"error: the queue was not idle {idleLimit.TotalMinutes:0} min after the faults ended");
                    break;
                }
                await KeepNodesUpAsync(ct);
                await Task.Delay(500, ct);
            }
            var total = soakClock.Elapsed;
            await ShutdownAsync();
            return await ReportAsync(faultTime, total, ct);
        }

        private TimeSpan Interval() => TimeSpan.FromSeconds(2 + rng.NextDouble() * 6); // 2-8 s between faults

        /// <summary>Enough long files that every worker has shards that take seconds; returns the shard length.</summary>
        private double Generate()
        {
            var total = s.CorpusHours * 3600;
            var files = Math.Max(2, (int)Math.Ceiling(total / 900));
            var gen = new SpeechCorpusGenerator(Path.Combine(dir, ".espeak"));
            var r = new Random(11);
            Console.WriteLine($"soak: generating {total / 60:0.#} min of speech in {files} files ...");
            for (var i = 0; i < files; i++)
                gen.WriteWav(Path.Combine(Corpus, $"talk{i:000}.wav"), total / files, r);
            // At least two shards per worker; long files are split into ranges.
            return Math.Clamp(total / (s.Nodes * s.WorkersPerNode * 2), 60, 1800);
        }

        private Process StartNode(string node, bool untilIdle)
        {
            var clockOffset = _skew.GetValueOrDefault(node);
            var (exe, prefix) = RunCommand.Self();
            var psi = new ProcessStartInfo(exe)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
            };
            foreach (var a in prefix) psi.ArgumentList.Add(a);
            foreach (var a in new[] { "run", "--gpus", "none", "--cpu-workers", s.WorkersPerNode.ToString(CultureInfo.InvariantCulture), "--queues", queue })
                psi.ArgumentList.Add(a);
            if (untilIdle) psi.ArgumentList.Add("--until-idle");
            psi.Environment["ConnectionStrings__Workers"] = childCs;
            psi.Environment["Fleet__NodeName"] = node;
            psi.Environment["Fleet__TempRoot"] = Path.Combine(dir, "tmp");
            psi.Environment["Fleet__Restart__BaseDelay"] = "00:00:00.2";
            psi.Environment["Fleet__Restart__MaxDelay"] = "00:00:02";
            psi.Environment["Fleet__Restart__MaxCrashes"] = "100000"; // killing workers is the point here, not a crash loop
            psi.Environment["Queue__LeaseSeconds"] = LeaseSeconds.ToString(CultureInfo.InvariantCulture);
            psi.Environment["Queue__HeartbeatSeconds"] = "2";
            psi.Environment["Queue__RescueIntervalSeconds"] = "1";
            psi.Environment["Queue__PollSeconds"] = "1";
            if (clockOffset is not null)
            {
                // The node's wall clock only (its workers inherit it); timers run on the true monotonic clock.
                psi.Environment["LD_PRELOAD"] = LibFaketime;
                psi.Environment["FAKETIME"] = clockOffset;
                psi.Environment["FAKETIME_DONT_FAKE_MONOTONIC"] = "1";
            }
            var p = Process.Start(psi)!;
            p.StandardInput.Close();
            var log = new StreamWriter(Path.Combine(Logs, node + ".log"), append: true) { AutoFlush = true };
            var gate = new object();
            void Write(string? line) { if (line is null) return; lock (gate) log.WriteLine(line); }
            p.OutputDataReceived += (_, e) => Write(e.Data);
            p.ErrorDataReceived += (_, e) => Write(e.Data);
            p.Exited += (_, _) => { lock (gate) log.Flush(); };
            p.EnableRaisingEvents = true;
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            return p;
        }

        /// <summary>A node whose supervisor exited without us killing it is restarted (and counted).</summary>
        private Task KeepNodesUpAsync(CancellationToken ct)
        {
            foreach (var (node, p) in _nodes.ToList())
            {
                if (!p.HasExited) continue;
                _unexpectedExits++;
                Console.WriteLine($"soak: node {node}'s supervisor exited by itself ({p.ExitCode}); starting it again");
                p.Dispose();
                _nodes[node] = StartNode(node, untilIdle: false);
            }
            return Task.CompletedTask;
        }

        private async Task<string?> InjectAsync(string kind, CancellationToken ct)
        {
            switch (kind)
            {
                case KillWorker:
                {
                    var pid = await PickWorkerAsync(ct);
                    if (pid is null) return null;
                    if (Signals.Send(pid.Value.Pid, Signals.SigKill) != 0) return null;
                    return $"pid {pid.Value.Pid} ({pid.Value.Worker})";
                }
                case StopWorker:
                {
                    if (_stoppedPid != 0) return null;
                    var pid = await PickWorkerAsync(ct);
                    if (pid is null) return null;
                    if (Signals.Send(pid.Value.Pid, Signals.SigStop) != 0) return null;
                    var seconds = LeaseSeconds + 2 + rng.Next(0, 5);
                    _stoppedPid = pid.Value.Pid;
                    _resumeAt = DateTime.UtcNow.AddSeconds(seconds);
                    return $"pid {pid.Value.Pid} ({pid.Value.Worker}) frozen for {seconds} s";
                }
                case KillNode:
                {
                    var live = _nodes.Where(kv => !kv.Value.HasExited).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
                    if (live.Count == 0) return null;
                    var node = live[rng.Next(live.Count)];
                    var p = _nodes[node];
                    var pid = p.Id;
                    if (_stoppedPid != 0 && ParentOf(_stoppedPid) == pid) _stoppedPid = 0;
                    p.Kill(entireProcessTree: true); // the supervisor and its workers: the node is lost
                    await p.WaitForExitAsync(ct);
                    p.Dispose();
                    _nodeRestarts++;
                    _nodes[node] = StartNode(node, untilIdle: false);
                    return $"node {node} (supervisor pid {pid} and its workers); replacement supervisor pid {_nodes[node].Id}";
                }
                case SkewNode:
                {
                    // Kill a whole node and start it again with its clock 3 minutes off: its shards are rescued, and
                    // from then on its claims, heartbeats and rescues must work exactly like everyone else's.
                    var live = _nodes.Where(kv => !kv.Value.HasExited).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
                    if (live.Count == 0) return null;
                    var node = live[rng.Next(live.Count)];
                    var p = _nodes[node];
                    if (_stoppedPid != 0 && ParentOf(_stoppedPid) == p.Id) _stoppedPid = 0;
                    p.Kill(entireProcessTree: true);
                    await p.WaitForExitAsync(ct);
                    p.Dispose();
                    // -3 min, +3 min or back to the true clock, never the clock it had.
                    var offset = new[] { "-3m", "+3m", "true" }.Where(o => o != _skew.GetValueOrDefault(node, "true")).ElementAt(rng.Next(2));
                    if (offset == "true") _skew.Remove(node); else _skew[node] = offset;
                    _nodes[node] = StartNode(node, untilIdle: false);
                    return $"node {node} restarted with its clock {(offset == "true" ? "true again" : offset)}";
                }
                case Failover:
                {
                    if (pair is null || _postgresDown) return null;
                    _postgresDown = true;
                    var what = await pair.FailoverAsync(ct);
                    _postgresDown = false;
                    db.Clear();
                    return what;
                }
                case TerminateBackend:
                {
                    if (_postgresDown) return null;
                    try
                    {
                        await using var conn = await db.OpenConnectionAsync(ct);
                        await using var pick = BenchSql.Command(conn, "SoakBackendPick");
                        pick.Parameters.AddWithValue("application_name", new NpgsqlConnectionStringBuilder(childCs).ApplicationName!);
                        if (await BackendPick.FirstOrDefaultAsync(pick, ct) is not { } backend) return null;
                        await using var term = BenchSql.Command(conn, "BackendTerminate");
                        term.Parameters.AddWithValue("pid", backend);
                        return await BackendTerminated.SingleAsync(term, ct) ? $"backend pid {backend}" : null;
                    }
                    catch (Exception e) when (IsTransient(e)) { db.Clear(); return null; }
                }
                case RestartPostgres:
                {
                    if (pair is null) return null;
                    var seconds = 2 + rng.Next(0, 5);
                    _postgresDown = true;
                    await pair.RestartPrimaryAsync(TimeSpan.FromSeconds(seconds), ct);
                    _postgresDown = false;
                    db.Clear();
                    return $"stopped for {seconds} s, started again";
                }
                case ChangeFile:
                    try { return await _changed!.InjectAsync(Directory.EnumerateFiles(Corpus, "*.wav").Order(StringComparer.Ordinal).First(), ct); }
                    catch (Exception e) when (IsTransient(e)) { db.Clear(); return null; }
                default: throw new InvalidOperationException(kind);
            }
        }

        /// <summary>A worker of one of our nodes in the middle of a shard (or, failing that, any running one of ours).</summary>
        private async Task<(int Pid, string Worker)?> PickWorkerAsync(CancellationToken ct)
        {
            var nodes = _nodes.Keys.ToArray();
            List<string> candidates;
            try
            {
                candidates = await Retry(async () =>
                {
                    var list = new List<string>();
                    await using var cmd = BenchSql.Command(db, "SoakWorkersRunning");
                    cmd.Parameters.AddWithValue("nodes", nodes);
                    list.AddRange(await WorkersRunning.ListAsync(cmd, ct));
                    return list;
                }, ct, attempts: 3);
            }
            catch (Exception e) when (IsTransient(e)) { return null; }
            var supervisors = _nodes.Values.Where(p => !p.HasExited).Select(p => p.Id).ToHashSet();
            var ours = candidates.Order(StringComparer.Ordinal)
                .Select(w => (Worker: w, Pid: int.TryParse(w.Split('/') is { Length: 3 } parts ? parts[1] : "", out var pid) ? pid : 0))
                // Only processes this run started: a live child of one of our supervisors, not frozen already.
                .Where(x => x.Pid > 0 && x.Pid != _stoppedPid && ParentOf(x.Pid) is { } parent && supervisors.Contains(parent))
                .ToList();
            if (ours.Count == 0) return null;
            var pick = ours[rng.Next(ours.Count)];
            return (pick.Pid, pick.Worker);
        }

        private async Task ResumeIfDueAsync()
        {
            if (_stoppedPid == 0 || DateTime.UtcNow < _resumeAt) return;
            Signals.Send(_stoppedPid, Signals.SigCont); // SIGCONT (a no-op where it was killed meanwhile)
            _stoppedPid = 0;
            await Task.CompletedTask;
        }

        private static int? ParentOf(int pid)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                return int.Parse(rest[1], CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
                return null;
            }
        }

        private async Task<long> OpenShardsAsync(long corpusId, CancellationToken ct)
        {
            await using var cmd = BenchSql.Command(db, "ShardsOpenCount");
            cmd.Parameters.AddWithValue("c", corpusId);
            return await OpenShards.SingleAsync(cmd, ct);
        }

        private async Task<long> OpenShardsInQueueAsync(CancellationToken ct)
        {
            await using var cmd = BenchSql.Command(db, "ShardsOpenInQueueCount");
            cmd.Parameters.AddWithValue("queue", queue);
            return await OpenShardsInQueue.SingleAsync(cmd, ct);
        }

        /// <summary>Drains the nodes (SIGTERM), then kills what is left; makes sure the database is up again.</summary>
        public async Task ShutdownAsync()
        {
            if (_stoppedPid != 0) { Signals.Send(_stoppedPid, Signals.SigCont); _stoppedPid = 0; }
            if (_postgresDown && pair is not null)
            {
                try { await pair.StartPrimaryAsync(CancellationToken.None); _postgresDown = false; db.Clear(); }
                catch (Exception e) { Console.Error.WriteLine($"soak: could not start PostgreSQL again: {e.Message}"); }
            }
            foreach (var p in _nodes.Values.Where(p => !p.HasExited)) Signals.Send(p.Id, Signals.SigTerm);
            foreach (var p in _nodes.Values)
            {
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                try { await p.WaitForExitAsync(wait.Token); }
                catch (OperationCanceledException) { p.Kill(entireProcessTree: true); await p.WaitForExitAsync(CancellationToken.None); }
                p.Dispose();
            }
            _nodes.Clear();
        }

        public async Task DeleteCorporaAsync()
        {
            var admin = new CorpusAdmin(db, time);
            foreach (var id in _soakCorpora.Select(c => c.Id).Append(_referenceId).Concat(_changed?.CorpusIds ?? []).Where(id => id != 0))
            {
                try { await Retry(async () => { await admin.DeleteAsync(id, CancellationToken.None); return 0; }, CancellationToken.None); }
                catch (Exception e) when (IsTransient(e)) { Console.Error.WriteLine($"soak: could not delete corpus {id}: {e.Message}"); }
            }
        }

        private async Task<bool> ReportAsync(TimeSpan faultTime, TimeSpan total, CancellationToken ct)
        {
            var ids = _soakCorpora.Select(c => c.Id).ToArray();
            var stats = await Retry(async () =>
            {
                await using var cmd = BenchSql.Command(db, "SoakReport");
                cmd.Parameters.AddWithValue("ids", ids);
                cmd.CommandTimeout = 300;
                return await Report.SingleAsync(cmd, ct);
            }, ct);
            var (shards, succeeded, dead, attempts, retries, rescues, failedAttempts, dupShards, dupSegments, orphanSegments, lost, audio, segments, fileFailures) = stats;

            var referenceSegments = await Retry(async () =>
            {
                await using var cmd = BenchSql.Command(db, "SegmentsCount");
                cmd.Parameters.AddWithValue("c", _referenceId);
                return await SegmentsCount.SingleAsync(cmd, ct);
            }, ct);
            var completed = 0;
            var equal = 0;
            var mismatches = new List<string>();
            foreach (var (id, name) in _soakCorpora)
            {
                if (await Retry(() => OpenShardsAsync(id, ct), ct) == 0) completed++;
                var diff = await Retry(() => SegmentDifferencesAsync(_referenceId, id, ct), ct);
                if (diff == 0) equal++;
                else mismatches.Add($"{name}: {diff} segment(s) differ");
            }
            var segmentsEqual = referenceSegments > 0 && equal == _soakCorpora.Count;
            var duplicates = dupShards + dupSegments + orphanSegments;
            var lostRounded = lost < 0.0005 ? 0 : lost;

            var I = CultureInfo.InvariantCulture;
            var rows = new List<(string, string)>
            {
                ("duration", $"{faultTime.TotalMinutes:0.0} min of faults, {total.TotalMinutes:0.0} min in all"),
                ("nodes x workers", $"{s.Nodes} x {s.WorkersPerNode}"),
            };
            foreach (var (kind, n) in _faults)
                rows.Add(("  " + kind, kind is RestartPostgres or Failover && !_embedded ? "skipped (configured database)"
                    : kind == SkewNode && !File.Exists(LibFaketime) ? "skipped (no libfaketime)" : n.ToString(I)));
            rows.Add(("faults injected", _faults.Values.Sum().ToString(I)));
            rows.Add(("supervisors exited unasked", _unexpectedExits.ToString(I)));
            rows.Add(("largest clock offset", await Retry(() => LargestClockOffsetAsync(ct), ct) is { } offset ? $"{offset / 1000:0.0} s (queue on the database's clock)" : "-"));
            rows.Add(("corpora completed", $"{completed} of {_soakCorpora.Count} (+ 1 reference)"));
            rows.Add(("audio", $"{audio / 3600:0.###} h"));
            rows.Add(("shards", $"{shards} ({succeeded} succeeded, {dead} dead)"));
            rows.Add(("attempts", attempts.ToString(I)));
            rows.Add(("retries", $"{retries} ({failedAttempts} failed attempts)"));
            rows.Add(("rescues", rescues.ToString(I)));
            rows.Add(("duplicates", duplicates.ToString(I)));
            rows.Add(("  shards succeeded twice", dupShards.ToString(I)));
            rows.Add(("  duplicate segments", (dupSegments + orphanSegments).ToString(I)));
            rows.Add(("lost seconds", lostRounded.ToString("0.###", I)));
            rows.Add(("file failures", fileFailures.ToString(I)));
            rows.Add(("segments", $"{segments} ({referenceSegments} per corpus in the reference)"));
            rows.Add(("segments equal reference", segmentsEqual ? $"yes ({equal} of {_soakCorpora.Count})" : $"no ({equal} of {_soakCorpora.Count})"));

            var changed = _changed is null ? (Pass: true, Rows: [], Problems: []) : await Retry(() => _changed.VerifyAsync(ct), ct);
            rows.AddRange(changed.Rows);

            Console.WriteLine();
            var width = rows.Max(r => r.Item1.Length);
            Console.WriteLine($"  {"measure".PadRight(width)}  value");
            Console.WriteLine($"  {new string('-', width)}  {new string('-', 32)}");
            foreach (var (k, v) in rows) Console.WriteLine($"  {k.PadRight(width)}  {v}");
            foreach (var m in mismatches.Concat(changed.Problems)) Console.Error.WriteLine("soak: " + m);

            var pass = duplicates == 0 && lostRounded == 0 && segmentsEqual && changed.Pass;
            Console.WriteLine(pass ? "soak: ok (no duplicates, nothing lost, segments equal to the reference, changed files accounted for)" : "soak: FAILED");
            return pass;
        }

        /// <summary>The largest clock offset any of our nodes' workers reported (migration 008), in ms.</summary>
        private async Task<double?> LargestClockOffsetAsync(CancellationToken ct)
        {
            await using var cmd = BenchSql.Command(db, "SoakClockOffsetMax");
            return await ClockOffsetMax.SingleAsync(cmd, ct);
        }

        /// <summary>Segments of <paramref name="other"/> that do not match the reference's, file by file and in order (1 ms tolerance).</summary>
        private async Task<long> SegmentDifferencesAsync(long reference, long other, CancellationToken ct)
        {
            await using var cmd = BenchSql.Command(db, "SoakSegmentDifferences");
            cmd.Parameters.AddWithValue("reference", reference);
            cmd.Parameters.AddWithValue("other", other);
            cmd.CommandTimeout = 300;
            return await SegmentDifferences.SingleAsync(cmd, ct);
        }

        /// <summary>Our own queries ride out a PostgreSQL restart and killed connections.</summary>
        private async Task<T> Retry<T>(Func<Task<T>> action, CancellationToken ct, int attempts = 120)
        {
            for (var i = 1; ; i++)
            {
                try { return await action(); }
                catch (Exception e) when (IsTransient(e) && i < attempts)
                {
                    db.Clear();
                    await Task.Delay(500, ct);
                }
            }
        }
    }

    private static bool IsTransient(Exception e) =>
        e is NpgsqlException or SocketException or IOException or TimeoutException
        || e.InnerException is { } inner && IsTransient(inner);

    private static readonly RowMap<int?> BackendPick = new("SoakBackendPick", c =>
    {
        var pid = c.Column<int>("pid");
        return r => r.Get(pid);
    });

    private static readonly RowMap<bool> BackendTerminated = new("BackendTerminate", c =>
    {
        var terminated = c.Column<bool>("terminated");
        return r => r.Get(terminated);
    });

    private static readonly RowMap<string> WorkersRunning = new("SoakWorkersRunning", c =>
    {
        var worker = c.Column<string>("worker");
        return r => r.Get(worker);
    });

    private static readonly RowMap<long> OpenShards = Count("ShardsOpenCount", "open_shards");
    private static readonly RowMap<long> OpenShardsInQueue = Count("ShardsOpenInQueueCount", "open_shards");
    private static readonly RowMap<long> SegmentsCount = Count("SegmentsCount", "segments");
    private static readonly RowMap<long> SegmentDifferences = Count("SoakSegmentDifferences", "differences");

    private static readonly RowMap<double?> ClockOffsetMax = new("SoakClockOffsetMax", c =>
    {
        var max = c.Column<double?>("max_offset_ms");
        return r => r.Get(max);
    });

    private static readonly RowMap<SoakTotals> Report = new("SoakReport", c =>
    {
        var shards = c.Column<long>("shards");
        var succeeded = c.Column<long>("succeeded");
        var dead = c.Column<long>("dead");
        var attempts = c.Column<long>("attempts");
        var retries = c.Column<long>("retries");
        var rescues = c.Column<long>("rescues");
        var failedAttempts = c.Column<long>("failed_attempts");
        var duplicateShards = c.Column<long>("duplicate_shards");
        var duplicateSegments = c.Column<long>("duplicate_segments");
        var orphanSegments = c.Column<long>("orphan_segments");
        var lost = c.Column<double>("lost_seconds");
        var audio = c.Column<double>("audio_seconds");
        var segments = c.Column<long>("segments");
        var fileFailures = c.Column<long>("file_failures");
        return r => new SoakTotals(r.Get(shards), r.Get(succeeded), r.Get(dead), r.Get(attempts), r.Get(retries), r.Get(rescues), r.Get(failedAttempts),
            r.Get(duplicateShards), r.Get(duplicateSegments), r.Get(orphanSegments), r.Get(lost), r.Get(audio), r.Get(segments), r.Get(fileFailures));
    });

    /// <summary>A statement that returns one count, under <paramref name="column"/>.</summary>
    private static RowMap<long> Count(string statement, string column) => new(statement, c =>
    {
        var count = c.Column<long>(column);
        return r => r.Get(count);
    });

    /// <summary>SoakReport's one row.</summary>
    private sealed record SoakTotals(long Shards, long Succeeded, long Dead, long Attempts, long Retries, long Rescues, long FailedAttempts,
        long DuplicateShards, long DuplicateSegments, long OrphanSegments, double LostSeconds, double AudioSeconds, long Segments, long FileFailures);
}
