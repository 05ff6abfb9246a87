using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Workers.Audio;
using Polly;
using Workers.Core.Options;
using Workers.Fleet.Resilience;
using Workers.Onnx;
using Workers.Pipeline.Processing;
using Workers.Pipeline.Stages;
using Workers.Pipeline.Vad;
using Workers.Postgres.Fleet;
using Workers.Postgres.Queue;

namespace Workers.Fleet.Worker;

/// <summary>
/// One worker process's loop: warm the ONNX session once, then claim a shard, process it under a
/// heartbeat, complete or fail it, repeat. Delivery guarantee, by checkpoint:
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
/// <item>A crash anywhere leaves the lease to expire; the rescuer re-queues the shard.</item>
/// </list>
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
    QueueMaintenance? maintenance = null,
    AttemptLog? attemptLog = null,
    AudioDecoderOptions? decoder = null,
    IReadOnlyList<ShardPipeline>? pipelines = null)
{
    // The pipelines this process has loaded (issue 15): it claims only their shards and runs the one each shard names.
    // Without a list, the one pipeline of options.Pipeline, from vad and model.
    private readonly Dictionary<string, ShardPipeline> _pipelines =
        (pipelines ?? [new ShardPipeline(options.Pipeline, vad, model)]).ToDictionary(p => p.Name, StringComparer.Ordinal);
    private string[] PipelineNames => [.. _pipelines.Keys.Order(StringComparer.Ordinal)];
    private readonly QueueOptions _q = queue.Options;
    private readonly WorkerIdentity _who = new(
        $"{options.Node}/{Environment.ProcessId}/{options.Slot}", options.Node, options.Gpu, executionProvider);
    private DateTimeOffset _lastRescue = DateTimeOffset.MinValue;
    private readonly ResiliencePipeline _untilUp = DatabaseRetry.Forever(logger, time);
    private readonly ResiliencePipeline _withinLease = DatabaseRetry.Within(queue.Options.Lease, logger, time);

    public WorkerIdentity Identity => _who;

    /// <summary>Shards completed by this worker.</summary>
    public int Completed { get; private set; }

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
        using var beats = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var registryBeat = BeatRegistryAsync(beats.Token);
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
            await beats.CancelAsync();
            await registryBeat;
            // Any exit of this loop says so; a process killed outright leaves its row 'running' with an ageing heartbeat.
            try { await _withinLease.ExecuteAsync(async t => await registry.StopAsync(_who.Worker, ct: t), CancellationToken.None); }
            catch (Exception e) when (DatabaseRetry.IsTransient(e)) { LogFailNotRecorded(-1, e.Message); }
        }
    }

    private ClaimedShard? _current;
    private DateTimeOffset _lastDiskWarning = DateTimeOffset.MinValue;

    [LoggerMessage(LogLevel.Warning, "Not claiming: {Free} MB free under {TempRoot}, below Fleet:MinFreeDiskMb ({Min} MB). Free space or lower the limit.")]
    private partial void LogLowDisk(string tempRoot, long free, long min);

    /// <summary>The registry heartbeat: alive, and on which shard. Runs while idle too, so a stale row means a dead process.</summary>
    private async Task BeatRegistryAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_q.Heartbeat, time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                var shard = Volatile.Read(ref _current);
                var claims = ClaimLatency.TakeReport();
                try { if (await registry.HeartbeatAsync(_who.Worker, shard?.Id, shard?.Attempt, claims, ct) is { } offsetMs) CheckClock(new ClockReading(offsetMs, 0), atStart: false); }
                catch (Exception e) when (DatabaseRetry.IsTransient(e)) { ClaimLatency.Unreport(claims); /* the next beat tries again */ }
            }
        }
        catch (OperationCanceledException) { }
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
                }
                await listener.WaitAsync(TimeSpan.FromSeconds(_q.PollSeconds), ct);
                continue;
            }
            // A database outage pauses the worker here, retrying with backoff; nothing is claimed meanwhile.
            await _untilUp.ExecuteAsync(async t => await RescueIfDueAsync(t), ct);
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

    private async Task RescueIfDueAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (now - _lastRescue < TimeSpan.FromSeconds(_q.RescueIntervalSeconds)) return;
        _lastRescue = now;
        foreach (var r in await queue.RescueExpiredAsync(ct: ct)) LogRescued(r.Id, r.Attempt, r.State);

        // Retention pruning rides on this tick when the composition root gave us a QueueMaintenance.
        // It keeps its own Retention:PruneIntervalMinutes clock (recorded fleet-wide) and an advisory
        // try-lock, so one node at a time prunes and the others skip at once. A transient database
        // error propagates to the caller's retry like the rescue's (the prune waits for its next
        // interval); any other failure of this housekeeping must not stop the worker: it is logged.
        if (maintenance is null) return;
        try
        {
            var pruned = await maintenance.PruneIfDueAsync(ct);
            if (pruned.Status == PruneStatus.Pruned)
                logger.LogInformation("Pruned {Attempts} finished attempt(s) older than {AttemptDays} d, {Workers} stopped worker row(s) older than {WorkerDays} d and {Minutes} throughput minute row(s) older than {ThroughputDays} d in {Batches} batch(es){More}",
                    pruned.AttemptsDeleted, maintenance.Options.AttemptDays, pruned.WorkersDeleted, maintenance.Options.StoppedWorkerDays,
                    pruned.ThroughputRowsDeleted, maintenance.Options.ThroughputDays, pruned.Batches, pruned.MoreLeft ? "; more left for the next prune" : "");
        }
        catch (Exception e) when (e is not OperationCanceledException && !DatabaseRetry.IsTransient(e))
        {
            logger.LogWarning(e, "Retention prune failed; trying again in {Minutes} min", maintenance.Options.PruneIntervalMinutes);
        }
    }

    private async Task ProcessAsync(ClaimedShard shard, CancellationToken stop)
    {
        var sw = Stopwatch.StartNew();
        var tempDir = Path.Combine(TempFolders.WorkerFolder(options.TempRoot, options.Node, Environment.ProcessId, options.Slot), $"{shard.Id}-{shard.Attempt}");
        // Stopping (SIGTERM) does not cut the shard off: it may finish within DrainSeconds, after
        // which it is given back without spending an attempt.
        using var drain = new CancellationTokenSource();
        using var onStop = stop.Register(() =>
        {
            LogDraining(shard.Id, options.DrainSeconds);
            try { drain.CancelAfter(TimeSpan.FromSeconds(options.DrainSeconds)); }
            catch (ObjectDisposedException) { }
        });
        using var leaseLost = CancellationTokenSource.CreateLinkedTokenSource(drain.Token);
        double processed = 0;
        var lost = false;
        Task? beat = null;
        Task<ShardOutput>? processing = null;
        try
        {
            Directory.CreateDirectory(tempDir);
            var items = await _withinLease.ExecuteAsync(async t => await queue.GetItemsAsync(shard.Id, t), drain.Token);
            LogClaimed(shard.Id, shard.Attempt, items.Count, shard.AudioSeconds);
            CorpusStorage.EnsureReachable(items);

            beat = Task.Run(async () =>
            {
                using var timer = new PeriodicTimer(_q.Heartbeat, time);
                var renewedAt = time.GetUtcNow();
                while (await timer.WaitForNextTickAsync(leaseLost.Token))
                {
                    try
                    {
                        if (await queue.HeartbeatAsync(shard, _who, Volatile.Read(ref processed), leaseLost.Token))
                        {
                            renewedAt = time.GetUtcNow();
                            continue;
                        }
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        LogHeartbeatError(shard.Id, e.Message);
                        if (time.GetUtcNow() - renewedAt < _q.Lease) continue; // the lease may still be ours; the next beat tries again
                        // Unreachable for a whole lease: the shard may already be rescued and running
                        // elsewhere. Stop now rather than finish work the fence would refuse anyway.
                    }
                    // Refused by the fence, or unreachable for a lease: lost.
                    lost = true;
                    LogLeaseLost(shard.Id, shard.Attempt);
                    await leaseLost.CancelAsync();
                    return;
                }
            }, CancellationToken.None);

            // A file listed relative to the corpus root must still be under it when opened (symlinks swapped since enqueue).
            var work = items.Select(i => new ProcessItem(i.FileIndex, i.FullPath, i.StartSeconds, i.EndSeconds, Path.IsPathRooted(i.Path) ? null : i.RootDir, i.FileSeconds)).ToList();
            // Inference is CPU-bound and synchronous: give it its own thread so the heartbeat never waits on it.
            var pipeline = _pipelines.TryGetValue(shard.Pipeline, out var p) ? p
                : throw new InvalidOperationException($"shard {shard.Id} names pipeline '{shard.Pipeline}', which this worker has not loaded (it serves {string.Join(", ", PipelineNames)})");
            List<SegmentStageOutput> stageResults = [];
            processing = Task.Factory.StartNew(() =>
            {
                using var batcher = new VadBatcher(pipeline.Model, pipeline.Vad);
                var decodeAhead = new DecodeAheadOptions { DecoderThreads = options.SplitCores(options.Cores).Decoders, MaxDecodedMb = options.MaxDecodedMb };
                // Decoded audio lives in the attempt's temp folder, removed with it below (or swept after a kill).
                var found = new ShardProcessor(batcher, pipeline.Vad, decoder, decodeAhead).Process(work, s => Volatile.Write(ref processed, s), leaseLost.Token, tempDir);
                // Then the model stages over the segments found (none for a VAD-only pipeline). They read the
                // items' speech ranges again: the decode-ahead files are gone once the VAD has finished an item.
                if (pipeline.Stages.Count > 0) stageResults = new SegmentStageRunner(pipeline.Stages, decoder).Run(work, found.Segments, leaseLost.Token);
                return found;
            }, leaseLost.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            // The drain's promise holds even while a decoder's read is stuck in the kernel (a hung mount,
            // which no one can cancel): when drain time is up the shard is given back without waiting for
            // that read. Every thread involved is a background thread, so none keeps the process alive.
            var output = await processing.WaitAsync(drain.Token);

            await leaseLost.CancelAsync(); // stop the heartbeat before the fenced complete
            try { await beat; } catch (OperationCanceledException) { }
            if (lost) return;

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
            // Retried on transient faults for about a lease: the transaction is all or nothing and
            // fenced, so a retry after an unknown outcome cannot write twice (the fence refuses it).
            if (await _withinLease.ExecuteAsync(async t => await queue.CompleteAsync(shard, _who, segments, failures, attemptLog?.Snapshot(), t,
                stageResults.Select(r => new SegmentResultRow(r.FileIndex, r.StartSeconds, r.Stage, r.ResultJson)).ToList()), CancellationToken.None))
            {
                Completed++;
                var wall = sw.Elapsed.TotalSeconds;
                var rate = output.AudioSeconds / Math.Max(1e-9, wall);
                try { await registry.ShardDoneAsync(_who.Worker, output.AudioSeconds, rate, stop); }
                catch (Exception e) when (DatabaseRetry.IsTransient(e)) { /* counters only; the shard itself is recorded */ }
                LogCompleted(shard.Id, shard.Attempt, segments.Count, failures.Count, output.AudioSeconds, wall, rate);
            }
            else LogLeaseLost(shard.Id, shard.Attempt);
        }
        catch (OperationCanceledException) when (lost)
        {
            // Lease lost mid-shard: results discarded, nothing written; another worker has it now.
        }
        catch (OperationCanceledException) when (drain.IsCancellationRequested)
        {
            // Drain time is up: give the shard back; another worker starts it afresh. Inference stops at
            // its next step; a moment for that, so the model is not in use when the process ends. A
            // processing thread still waiting then waits on a stuck read, not on the model.
            if (processing is not null) await Task.WhenAny(processing, Task.Delay(DrainGrace, time));
            await ReleaseQuietlyAsync(shard);
        }
        catch (Exception e)
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
        finally
        {
            if (!leaseLost.IsCancellationRequested) await leaseLost.CancelAsync();
            if (beat is not null) { try { await beat; } catch (OperationCanceledException) { } }
            try { if (Directory.Exists(tempDir)) Directory.Delete(tempDir, recursive: true); }
            catch (IOException e) { LogTempNotRemoved(tempDir, e.Message); }
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

    [LoggerMessage(LogLevel.Information, "Completed shard {Shard} attempt {Attempt}: {Segments} segment(s), {Failures} failed item(s), {Audio:0.0} s audio in {Wall:0.0} s ({Rate:0}x realtime)")]
    private partial void LogCompleted(long shard, int attempt, int segments, int failures, double audio, double wall, double rate);

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

    [LoggerMessage(LogLevel.Information, "Rescued shard {Shard} attempt {Attempt} (expired lease) -> {State}")]
    private partial void LogRescued(long shard, int attempt, string state);

    [LoggerMessage(LogLevel.Warning, "Could not remove temp folder {Dir}: {Error}")]
    private partial void LogTempNotRemoved(string dir, string error);
}
