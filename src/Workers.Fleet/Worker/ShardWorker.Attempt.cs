using Workers.Pipeline.Processing;
using Workers.Pipeline.Stages;
using Workers.Pipeline.Vad;
using Workers.Postgres.Queue;

namespace Workers.Fleet.Worker;

public sealed partial class ShardWorker
{
    /// <summary>
    /// One attempt's moving parts, so the cycle in <see cref="ProcessAsync"/> reads on one screen: its
    /// temp folder (removed on dispose), the drain deadline (SIGTERM gives it Fleet:DrainSeconds), the
    /// lease heartbeat, and the inference thread.
    /// </summary>
    private sealed class Attempt : IAsyncDisposable
    {
        private readonly ShardWorker _w;
        private readonly ClaimedShard _shard;
        private readonly CancellationTokenSource _drain = new();
        private readonly CancellationTokenSource _leaseLost;
        private readonly CancellationTokenRegistration _onStop;
        private Task? _beat;
        private Task<ShardOutput>? _processing;
        private double _processed;
        private volatile bool _lost;

        public Attempt(ShardWorker w, ClaimedShard shard, CancellationToken stop)
        {
            _w = w;
            _shard = shard;
            TempDir = Path.Combine(TempFolders.WorkerFolder(w.Options.TempRoot, w.Options.Node, Environment.ProcessId, w.Options.Slot), $"{shard.Id}-{shard.Attempt}");
            _leaseLost = CancellationTokenSource.CreateLinkedTokenSource(_drain.Token);
            // Stopping (SIGTERM) does not cut the shard off: it may finish within DrainSeconds, after
            // which it is given back without spending an attempt.
            _onStop = stop.Register(() =>
            {
                w.LogDraining(shard.Id, w.Options.DrainSeconds);
                try { _drain.CancelAfter(TimeSpan.FromSeconds(w.Options.DrainSeconds)); }
                catch (ObjectDisposedException) { }
            });
        }

        /// <summary>The attempt's private folder (decoded audio).</summary>
        public string TempDir { get; }

        /// <summary>Cancelled when drain time is up.</summary>
        public CancellationToken Drain => _drain.Token;

        public bool Drained => _drain.IsCancellationRequested;

        /// <summary>The heartbeat was refused by the fence, or the database was unreachable for a whole lease.</summary>
        public bool Lost => _lost;

        /// <summary>The model stages' results, once inference has finished.</summary>
        public IReadOnlyList<SegmentStageOutput> StageResults { get; private set; } = [];

        /// <summary>Checkpoint 2: renews the lease every Queue:HeartbeatSeconds with the progress so far.</summary>
        public void StartLeaseHeartbeat() => _beat = Task.Run(BeatLeaseAsync, CancellationToken.None);

        private async Task BeatLeaseAsync()
        {
            using var timer = new PeriodicTimer(_w._q.Heartbeat, _w.Time);
            var renewedAt = _w.Time.GetUtcNow();
            while (await timer.WaitForNextTickAsync(_leaseLost.Token))
            {
                try
                {
                    if (await _w.Queue.HeartbeatAsync(_shard, _w._who, Volatile.Read(ref _processed), _leaseLost.Token))
                    {
                        renewedAt = _w.Time.GetUtcNow();
                        continue;
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _w.LogHeartbeatError(_shard.Id, e.Message);
                    if (_w.Time.GetUtcNow() - renewedAt < _w._q.Lease) continue; // the lease may still be ours; the next beat tries again
                    // Unreachable for a whole lease: the shard may already be rescued and running
                    // elsewhere. Stop now rather than finish work the fence would refuse anyway.
                }
                // Refused by the fence, or unreachable for a lease: lost.
                _lost = true;
                _w.LogLeaseLost(_shard.Id, _shard.Attempt);
                _w._signals?.LeaseLost.Signal(_shard.Id);
                await _leaseLost.CancelAsync();
                return;
            }
        }

        /// <summary>
        /// Decode, VAD and the model stages on a thread of their own (inference is CPU-bound and
        /// synchronous: the heartbeat never waits on it). The drain's promise holds even while a
        /// decoder's read is stuck in the kernel (a hung mount, which no one can cancel): when drain
        /// time is up this throws without waiting for that read; every thread involved is a
        /// background thread, so none keeps the process alive.
        /// </summary>
        public Task<ShardOutput> RunInferenceAsync(ShardPipeline pipeline, IReadOnlyList<ShardItem> items)
        {
            // A file listed relative to the corpus root must still be under it when opened (symlinks swapped since enqueue).
            var work = items.Select(i => new ProcessItem(i.FileIndex, i.FullPath, i.StartSeconds, i.EndSeconds, Path.IsPathRooted(i.Path) ? null : i.RootDir, i.FileSeconds)).ToList();
            var options = _w.Options;
            _processing = Task.Factory.StartNew(() =>
            {
                using var batcher = new VadBatcher(pipeline.Model, pipeline.Vad);
                var decodeAhead = new DecodeAheadOptions { DecoderThreads = options.SplitCores(options.Cores).Decoders, MaxDecodedMb = options.MaxDecodedMb, MaxInMemoryMb = options.MaxDecodedInMemoryMb, GroupSeconds = options.DecodeGroupSeconds };
                // Decoded audio lives in the attempt's temp folder, removed with it (or swept after a kill).
                // The model stages (none for a VAD-only pipeline) run over each item's speech as the VAD finishes it,
                // read from the item's one decode before it is released.
                var stages = pipeline.Stages.Count > 0 ? new SegmentStageRunner(pipeline.Stages) : null;
                var found = new ShardProcessor(batcher, pipeline.Vad, _w.Decoder, decodeAhead, _w.DefaultSplitRows).Process(
                    work, s => Volatile.Write(ref _processed, s), _leaseLost.Token, TempDir,
                    stages is null ? null : (segment, samples) => stages.Add(segment, samples, _leaseLost.Token));
                if (stages is not null) StageResults = stages.Finish(_leaseLost.Token);
                return found;
            }, _leaseLost.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            return _processing.WaitAsync(_drain.Token);
        }

        /// <summary>Stops the lease heartbeat before the fenced complete; false when the lease was lost meanwhile.</summary>
        public async Task<bool> StopLeaseHeartbeatAsync()
        {
            await _leaseLost.CancelAsync();
            try { if (_beat is not null) await _beat; } catch (OperationCanceledException) { }
            return !_lost;
        }

        /// <summary>After a drain: inference stops at its next step; a moment for that, so the model is not in use when the
        /// process ends. A processing thread still waiting then waits on a stuck read, not on the model.</summary>
        public async Task LetInferenceStopAsync()
        {
            if (_processing is not null) await Task.WhenAny(_processing, Task.Delay(DrainGrace, _w.Time));
        }

        public async ValueTask DisposeAsync()
        {
            if (!_leaseLost.IsCancellationRequested) await _leaseLost.CancelAsync();
            if (_beat is not null) { try { await _beat; } catch (OperationCanceledException) { } }
            try { if (Directory.Exists(TempDir)) Directory.Delete(TempDir, recursive: true); }
            catch (IOException e) { _w.LogTempNotRemoved(TempDir, e.Message); }
            _leaseLost.Dispose();
            await _onStop.DisposeAsync();
            _drain.Dispose();
        }
    }
}
