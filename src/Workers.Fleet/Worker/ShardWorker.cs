using Workers.Core.Signals;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Workers.Audio;
using Polly;
using Workers.Core.Options;
using Workers.Fleet.Housekeeping;
using Workers.Fleet.Resilience;
using Workers.Onnx;
using Workers.Pipeline.Processing;
using Workers.Pipeline.Stages;
using Workers.Pipeline.Vad;
using Workers.Postgres.Fleet;
using Workers.Postgres.Queue;
using Workers.Postgres;

namespace Workers.Fleet.Worker;

/// <summary>
/// One worker process's loop: claim a shard, process it under a lease heartbeat, complete or fail
/// it, repeat (<see cref="ProcessAsync"/> is one cycle). Delivery guarantee, by checkpoint:
/// <list type="number">
/// <item>Claim: the shard is ours under (id, attempt) until the lease expires.</item>
/// <item>Heartbeat every Queue:HeartbeatSeconds renews the lease and reports progress; a refused
///   heartbeat means the lease is lost: processing is cancelled and nothing is written.</item>
/// <item>Complete: segments and the state change in one fenced transaction; refused if the lease
///   was lost meanwhile, so a result is written at most once.</item>
/// <item>Any failure of the shard as a whole is recorded as a failed attempt (retry with backoff,
///   or dead), with the error type, message, stack and log tail.</item>
/// <item>Each attempt's log lines (from <see cref="AttemptLog"/>, when given) go with its outcome,
///   succeeded or failed, into <c>shard_attempts.log_tail</c>; a retried write takes them afresh.</item>
/// <item>A crash anywhere leaves the lease to expire; the <see cref="Housekeeping.LeaseRescuer"/>
///   (its own service, in every worker process and in <c>serve</c>) re-queues the shard.</item>
/// </list>
/// Rescue, pruning and the registry heartbeat are housekeeping services beside this loop
/// (<see cref="Housekeeping.Housekeeping"/>); the registry heartbeat beats through <see cref="BeatRegistryAsync"/>.
/// </summary>
public sealed partial class ShardWorker(
    ShardQueue queue,
    ShardNotificationListener listener,
    WorkerRegistry registry,
    WorkerOptions options,
    VadOptions vad,
    IVadModel model,
    string executionProvider,
    TimeProvider time,
    ILogger logger,
    AttemptLog? attemptLog = null,
    AudioDecoderOptions? decoder = null,
    IReadOnlyList<ShardPipeline>? pipelines = null,
    ShardWorker.Signals? signals = null) : IRegistryBeat
{
    /// <summary>What a test can wait for instead of the log lines that report the same events; production never gives one.</summary>
    public sealed class Signals
    {
        /// <summary>A database call failed transiently and is retried (the worker waits out an outage).</summary>
        public TestSignal<Exception?> DatabaseRetry { get; } = new("database retry");

        /// <summary>Not claiming: free disk under the temp root is below Fleet:MinFreeDiskMb (the free MB).</summary>
        public TestSignal<long> LowDisk { get; } = new("low disk");

        /// <summary>A shard was claimed and its items read.</summary>
        public TestSignal<ClaimedShard> Claimed { get; } = new("shard claimed");

        /// <summary>The lease on a shard was lost (the shard's id): its results are discarded.</summary>
        public TestSignal<long> LeaseLost { get; } = new("lease lost");
    }

    private readonly Signals? _signals = signals;
    // The pipelines this process has loaded (issue 15): it claims only their shards and runs the one each shard names.
    // Without a list, the one pipeline of options.Pipeline, from vad and model.
    private readonly Dictionary<string, ShardPipeline> _pipelines =
        (pipelines ?? [new ShardPipeline(options.Pipeline, vad, model)]).ToDictionary(p => p.Name, StringComparer.Ordinal);
    private string[] PipelineNames => [.. _pipelines.Keys.Order(StringComparer.Ordinal)];
    private readonly QueueOptions _q = queue.Options;
    private readonly WorkerIdentity _who = new(
        $"{options.Node}/{Environment.ProcessId}/{options.Slot}", options.Node, options.Gpu, executionProvider);
    private readonly ResiliencePipeline _untilUp = DatabaseRetry.Forever(logger, time, signals is null ? null : signals.DatabaseRetry.Signal);
    private readonly ResiliencePipeline _withinLease = DatabaseRetry.Within(queue.Options.Lease, logger, time, signals is null ? null : signals.DatabaseRetry.Signal);
    private readonly TaskCompletionSource _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Held by a registry beat while it runs, and by the stop that marks the row stopped: no beat lands after it.
    private readonly SemaphoreSlim _beatGate = new(1, 1);
    private bool _stopped;

    public WorkerIdentity Identity => _who;

    // For the attempt (ShardWorker.Attempt.cs), which runs one cycle's moving parts with this worker's settings.
    private WorkerOptions Options => options;
    private TimeProvider Time => time;
    private ShardQueue Queue => queue;
    private AudioDecoderOptions? Decoder => decoder;

    /// <summary>Rows a CPU worker splits a shard's long items to fill when <c>SplitRows</c> is not set
    /// (<see cref="Pipeline.Vad.VadOptions.SplitRows"/>): Silero on one CPU thread costs 57 µs a row at
    /// batch 16, 24 and 64 alike, and 63 at 8 (measured), so more rows only add warm-up windows.</summary>
    public const int CpuSplitRows = 16;

    // A worker on CUDA splits to fill the whole batch: there rows are what a kernel launch amortises.
    private int? DefaultSplitRows => executionProvider == Onnx.OnnxSession.CpuProvider ? CpuSplitRows : null;

    /// <summary>Shards completed by this worker.</summary>
    public int Completed { get; private set; }

    /// <summary>Completes once this worker's registry row exists (the registry heartbeat waits for it).</summary>
    public Task Registered => _registered.Task;

    public async Task<int> RunAsync(CancellationToken ct)
    {
        TempFolders.SweepDead(options.TempRoot, options.Node, logger); // e.g. the predecessor of this slot, if it was killed
        // The clock first: its round trips also warm up the connection and the code paths, so that the offset the
        // registration stores is not inflated by a cold first statement.
        var clock = await _untilUp.ExecuteAsync(async t => await registry.MeasureClockAsync(ct: t), ct);
        await _untilUp.ExecuteAsync(async t => await registry.RegisterAsync(new WorkerRegistration(_who.Worker, options.Node, Environment.ProcessId,
            options.Slot, options.Gpu, options.GpuUuid, options.GpuName, executionProvider, options.Threads,
            typeof(ShardWorker).Assembly.GetName().Version?.ToString() ?? "0", options.Queues) { Pipelines = PipelineNames }, t), ct);
        CheckClock(clock, atStart: true);
        _registered.TrySetResult();
        try
        {
            return await LoopAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            LogStopped(_who.Worker, Completed);
            return 0; // stopped while idle or waiting: nothing of ours is running
        }
        finally
        {
            await _beatGate.WaitAsync(CancellationToken.None);
            _stopped = true;
            _beatGate.Release();
            // Any exit of this loop says so; a process killed outright leaves its row 'running' with an ageing heartbeat.
            try { await _withinLease.ExecuteAsync(async t => await registry.StopAsync(_who.Worker, ct: t), CancellationToken.None); }
            catch (Exception e) when (PostgresErrors.IsTransient(e)) { LogFailNotRecorded(-1, e.Message); }
        }
    }

    private ClaimedShard? _current;
    private DateTimeOffset _lastDiskWarning = DateTimeOffset.MinValue;

    [LoggerMessage(LogLevel.Warning, "Not claiming: {Free} MB free under {TempRoot}, below Fleet:MinFreeDiskMb ({Min} MB). Free space or lower the limit.")]
    private partial void LogLowDisk(string tempRoot, long free, long min);

    /// <summary>One registry heartbeat (the <see cref="Housekeeping.RegistryHeartbeat"/> service calls it): alive, and on
    /// which shard, with the claim timings since the last beat and the clock offset.</summary>
    public async Task BeatRegistryAsync(CancellationToken ct)
    {
        await _beatGate.WaitAsync(ct);
        try
        {
            if (_stopped) return;
            var shard = Volatile.Read(ref _current);
            var claims = ClaimLatency.TakeReport();
            try { if (await registry.HeartbeatAsync(_who.Worker, shard?.Id, shard?.Attempt, claims, ct) is { } offsetMs) CheckClock(new ClockReading(offsetMs, 0), atStart: false); }
            catch (Exception e) when (PostgresErrors.IsTransient(e)) { ClaimLatency.Unreport(claims); /* the next beat tries again */ }
        }
        finally { _beatGate.Release(); }
    }

    // Whether the last check found the clock skewed: a heartbeat warns when skew appears and says when it is gone,
    // not every beat. Written by the start-up check, then only by the registry heartbeat loop.
    private bool _clockSkewed;

    /// <summary>
    /// Issue 11: the queue runs on the database's clock, so a skewed node keeps working correctly; the offset is
    /// stored in the registry row (fleet page, status --fleet, /metrics) and warned about beyond Queue:ClockSkewWarnSeconds.
    /// </summary>
    private void CheckClock(ClockReading clock, bool atStart)
    {
        var skewed = clock.Beyond(_q.ClockSkewWarn);
        if (skewed && (atStart || !_clockSkewed)) LogClockSkewed(_who.Worker, clock.OffsetMs / 1000, _q.ClockSkewWarnSeconds);
        else if (!skewed && _clockSkewed) LogClockInSync(_who.Worker, clock.OffsetMs / 1000);
        _clockSkewed = skewed;
    }

    [LoggerMessage(LogLevel.Warning, "Worker {Worker}: this node's clock is {Offset:+0.0;-0.0} s off the database's (more than Queue:ClockSkewWarnSeconds = {Threshold} s). Leases, claims and rescue run on the database's clock, so the queue is unaffected; fix the node's time sync (chrony/NTP) so its logs and timings line up.")]
    private partial void LogClockSkewed(string worker, double offset, double threshold);

    [LoggerMessage(LogLevel.Information, "Worker {Worker}: this node's clock is back within {Offset:+0.0;-0.0;0.0} s of the database's")]
    private partial void LogClockInSync(string worker, double offset);

    private async Task<int> LoopAsync(CancellationToken ct)
    {
        LogStarted(_who.Worker, executionProvider, string.Join(",", options.Queues));
        while (!ct.IsCancellationRequested)
        {
            if (options.MinFreeDiskMb > 0 && TempFolders.FreeMb(options.TempRoot) is var free && free < options.MinFreeDiskMb)
            {
                if (time.GetUtcNow() - _lastDiskWarning > TimeSpan.FromMinutes(1))
                {
                    _lastDiskWarning = time.GetUtcNow();
                    LogLowDisk(options.TempRoot, free, options.MinFreeDiskMb);
                    _signals?.LowDisk.Signal(free);
                }
                await listener.WaitAsync(TimeSpan.FromSeconds(_q.PollSeconds), ct);
                continue;
            }
            // A database outage pauses the worker here, retrying with backoff; nothing is claimed meanwhile.
            var claimed = await _untilUp.ExecuteAsync(async t => await TimedClaimAsync(t), ct);
            if (claimed.Count == 0)
            {
                if (options.UntilIdle)
                {
                    var (queued, running) = await _untilUp.ExecuteAsync(async t => await queue.ActiveCountsAsync(options.Queues, t, PipelineNames), ct);
                    if (queued == 0 && running == 0) { LogIdle(_who.Worker, Completed); return 0; }
                    // Work remains but is not claimable now (backoff, or running elsewhere): wait briefly.
                }
                await listener.WaitAsync(TimeSpan.FromSeconds(options.UntilIdle ? 1 : _q.PollSeconds), ct);
                continue;
            }
            Volatile.Write(ref _current, claimed[0]);
            attemptLog?.Begin(); // from here until the outcome is written, every line of this process belongs to this attempt
            try { await ProcessAsync(claimed[0], ct); }
            finally
            {
                attemptLog?.End();
                Volatile.Write(ref _current, null);
            }
        }
        LogStopped(_who.Worker, Completed);
        return 0;
    }

    /// <summary>
    /// One claim, timed (each try on its own: a try that failed and was retried is not counted).
    /// The timing goes out with the next registry heartbeat, not as a write of its own.
    /// </summary>
    private async Task<IReadOnlyList<ClaimedShard>> TimedClaimAsync(CancellationToken ct)
    {
        // Wall time, like the shard rate below: a latency is measured, not scheduled.
        var started = Stopwatch.GetTimestamp();
        var claimed = await queue.ClaimAsync(_who, options.Queues, 1, ct, PipelineNames);
        ClaimLatency.Record(Stopwatch.GetElapsedTime(started));
        return claimed;
    }

    /// <summary>This worker's claim timings, reported with each registry heartbeat.</summary>
    public ClaimLatency ClaimLatency { get; } = new();

    [LoggerMessage(LogLevel.Information, "Worker {Worker} stopped; {Completed} shard(s) completed")]
    private partial void LogStopped(string worker, int completed);

    /// <summary>One cycle: a claimed shard processed and its outcome written (the numbered checkpoints above).</summary>
    private async Task ProcessAsync(ClaimedShard shard, CancellationToken stop)
    {
        var wall = Stopwatch.StartNew();
        await using var attempt = new Attempt(this, shard, stop); // temp folder, drain deadline, lease heartbeat, inference thread
        try
        {
            Directory.CreateDirectory(attempt.TempDir);
            var items = await _withinLease.ExecuteAsync(async t => await queue.GetItemsAsync(shard.Id, t), attempt.Drain);
            LogClaimed(shard.Id, shard.Attempt, items.Count, shard.AudioSeconds);
            _signals?.Claimed.Signal(shard);
            CorpusStorage.EnsureReachable(items);
            attempt.StartLeaseHeartbeat();                                           // (2) renewed while it runs
            var output = await attempt.RunInferenceAsync(PipelineOf(shard), items); // on its own thread; a drain does not wait on it
            if (!await attempt.StopLeaseHeartbeatAsync()) return;                   // lost: nothing is written
            await CompleteAsync(shard, items, output, attempt.StageResults, wall);  // (3) fenced
        }
        catch (OperationCanceledException) when (attempt.Lost)
        {
            // Lease lost mid-shard: results discarded, nothing written; another worker has it now.
        }
        catch (OperationCanceledException) when (attempt.Drained)
        {
            // Drain time is up: give the shard back; another worker starts it afresh.
            await attempt.LetInferenceStopAsync();
            await ReleaseQuietlyAsync(shard);
        }
        catch (Exception e)
        {
            await FailAsync(shard, e);                                               // (4) retry or dead, with the log tail
        }
    }

    private ShardPipeline PipelineOf(ClaimedShard shard) => _pipelines.TryGetValue(shard.Pipeline, out var p) ? p
        : throw new InvalidOperationException($"shard {shard.Id} names pipeline '{shard.Pipeline}', which this worker has not loaded (it serves {string.Join(", ", PipelineNames)})");

    /// <summary>Checkpoint 3: the attempt's segments, file failures and stage results in one fenced transaction.</summary>
    private async Task CompleteAsync(ClaimedShard shard, IReadOnlyList<ShardItem> items, ShardOutput output, IReadOnlyList<SegmentStageOutput> stageResults, Stopwatch wall)
    {
        if (output.OomRetries > 0) LogOutOfMemory(shard.Id, output.OomRetries, output.FinalRunSize);
        // Said here as well as stored per file, so the attempt's log tail shows them beside the rest.
        foreach (var f in output.Failures.Take(ItemFailuresLogged))
            LogItemFailed(shard.Id, items.FirstOrDefault(i => i.FileIndex == f.FileIndex)?.Path ?? $"file #{f.FileIndex}", f.StartSeconds, f.EndSeconds, f.Error);
        if (output.Failures.Count > ItemFailuresLogged) LogMoreItemsFailed(shard.Id, output.Failures.Count - ItemFailuresLogged);
        // A file that grew since enqueue: processed as planned; said in the attempt's log (its log tail), where the shard page shows it.
        foreach (var w in output.Warnings)
            LogItemWarning(shard.Id, items.FirstOrDefault(i => i.FileIndex == w.FileIndex)?.Path ?? $"file #{w.FileIndex}", w.StartSeconds, w.EndSeconds, w.Message);
        var segments = output.Segments.Select(s => new SegmentRow(s.FileIndex, s.StartSeconds, s.EndSeconds)).ToList();
        var failures = output.Failures.Select(f => new FileFailureRow(f.FileIndex, f.StartSeconds, f.EndSeconds, f.Error)).ToList();
        var results = stageResults.Select(r => new SegmentResultRow(r.FileIndex, r.StartSeconds, r.Stage, r.ResultJson)).ToList();
        // Retried on transient faults for about a lease: the transaction is all or nothing and
        // fenced, so a retry after an unknown outcome cannot write twice (the fence refuses it).
        if (!await _withinLease.ExecuteAsync(async t => await queue.CompleteAsync(shard, _who, segments, failures, attemptLog?.Snapshot(), t, results), CancellationToken.None))
        {
            LogLeaseLost(shard.Id, shard.Attempt);
            _signals?.LeaseLost.Signal(shard.Id);
            return;
        }
        Completed++;
        var seconds = wall.Elapsed.TotalSeconds;
        var rate = output.AudioSeconds / Math.Max(1e-9, seconds);
        try { await registry.ShardDoneAsync(_who.Worker, output.AudioSeconds, rate, CancellationToken.None); }
        catch (Exception e) when (PostgresErrors.IsTransient(e)) { /* counters only; the shard itself is recorded */ }
        LogCompleted(shard.Id, shard.Attempt, segments.Count, failures.Count, output.AudioSeconds, seconds, rate, output.RowsPerCall, output.SplitRows, output.FinalRunSize);
    }

    /// <summary>Checkpoint 4: the shard failed as a whole; recorded (retry with backoff, or dead) unless the database cannot be reached.</summary>
    private async Task FailAsync(ClaimedShard shard, Exception e)
    {
        LogShardFailed(shard.Id, shard.Attempt, e.GetType().Name, e.Message);
        try
        {
            var outcome = await _withinLease.ExecuteAsync(async t => await queue.FailAsync(shard, _who, ShardFailure.From(e, attemptLog?.Snapshot()), t), CancellationToken.None);
            LogFailOutcome(shard.Id, outcome.ToString());
        }
        catch (Exception e2)
        {
            LogFailNotRecorded(shard.Id, e2.Message); // the lease will expire and the rescuer will re-queue it
        }
    }

    /// <summary>How long a drained shard's inference gets to reach its next step before the shard is given back.</summary>
    private static readonly TimeSpan DrainGrace = TimeSpan.FromSeconds(1);

    private async Task ReleaseQuietlyAsync(ClaimedShard shard)
    {
        try
        {
            if (await _withinLease.ExecuteAsync(async t => await queue.ReleaseAsync(shard, _who, $"worker stopping: not finished within Fleet:DrainSeconds ({options.DrainSeconds} s)", t), CancellationToken.None))
                LogReleased(shard.Id, shard.Attempt);
        }
        catch (Exception e) { LogFailNotRecorded(shard.Id, e.Message); }
    }

    [LoggerMessage(LogLevel.Information, "Stopping: shard {Shard} may finish within {Seconds} s, else it is given back")]
    private partial void LogDraining(long shard, int seconds);

    [LoggerMessage(LogLevel.Warning, "Shard {Shard}: inference ran out of memory; batch halved {Times} time(s), to {RunSize} streams per run")]
    private partial void LogOutOfMemory(long shard, int times, int runSize);

    /// <summary>Per-file failures logged per shard; the rest are counted (all are stored in file_failures).</summary>
    private const int ItemFailuresLogged = 10;

    [LoggerMessage(LogLevel.Warning, "Shard {Shard}: {Path} [{Start:0.0}-{End:0.0} s] failed, the shard goes on without it: {Error}")]
    private partial void LogItemFailed(long shard, string path, double start, double end, string error);

    [LoggerMessage(LogLevel.Warning, "Shard {Shard}: {Path} [{Start:0.0}-{End:0.0} s]: {Message}")]
    private partial void LogItemWarning(long shard, string path, double start, double end, string message);

    [LoggerMessage(LogLevel.Warning, "Shard {Shard}: {More} more failed item(s) not logged; all are recorded in the shard's file failures")]
    private partial void LogMoreItemsFailed(long shard, int more);

    [LoggerMessage(LogLevel.Information, "Gave back shard {Shard} attempt {Attempt} without spending the attempt")]
    private partial void LogReleased(long shard, int attempt);

    [LoggerMessage(LogLevel.Information, "Worker {Worker} started on {Provider}, queues {Queues}")]
    private partial void LogStarted(string worker, string provider, string queues);

    [LoggerMessage(LogLevel.Information, "Worker {Worker} idle: nothing queued or running; {Completed} shard(s) completed")]
    private partial void LogIdle(string worker, int completed);

    [LoggerMessage(LogLevel.Information, "Claimed shard {Shard} attempt {Attempt}: {Items} item(s), {Seconds:0.0} s of audio")]
    private partial void LogClaimed(long shard, int attempt, int items, double seconds);

    [LoggerMessage(LogLevel.Information, "Completed shard {Shard} attempt {Attempt}: {Segments} segment(s), {Failures} failed item(s), {Audio:0.0} s audio in {Wall:0.0} s ({Rate:0}x realtime); {Rows:0.0} rows a model call, long items split to fill {SplitRows} of {Batch}")]
    private partial void LogCompleted(long shard, int attempt, int segments, int failures, double audio, double wall, double rate, double rows, int splitRows, int batch);

    [LoggerMessage(LogLevel.Warning, "Lease lost on shard {Shard} attempt {Attempt}: its results are discarded, nothing was written")]
    private partial void LogLeaseLost(long shard, int attempt);

    [LoggerMessage(LogLevel.Warning, "Heartbeat for shard {Shard} failed ({Error}); retrying on the next beat")]
    private partial void LogHeartbeatError(long shard, string error);

    [LoggerMessage(LogLevel.Error, "Shard {Shard} attempt {Attempt} failed: {Type}: {Message}")]
    private partial void LogShardFailed(long shard, int attempt, string type, string message);

    [LoggerMessage(LogLevel.Information, "Shard {Shard}: {Outcome}")]
    private partial void LogFailOutcome(long shard, string outcome);

    [LoggerMessage(LogLevel.Error, "Could not record the outcome of shard {Shard} ({Error}); its lease will expire and it will be re-queued")]
    private partial void LogFailNotRecorded(long shard, string error);

    [LoggerMessage(LogLevel.Warning, "Could not remove temp folder {Dir}: {Error}")]
    private partial void LogTempNotRemoved(string dir, string error);
}
