using System.Data;
using Npgsql;
using Workers.Core.Options;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Queue;

/// <summary>What a prune call did.</summary>
public enum PruneStatus
{
    /// <summary>This call pruned (possibly nothing was old enough).</summary>
    Pruned,
    /// <summary>Another node holds the prune lock right now; nothing was done.</summary>
    Locked,
    /// <summary>The fleet pruned less than Retention:PruneIntervalMinutes ago; nothing was done.</summary>
    NotDue,
}

/// <summary>Rows deleted by one prune. <see cref="MoreLeft"/>: Retention:MaxBatchesPerPrune was reached; the next prune goes on.</summary>
public sealed record PruneResult(PruneStatus Status, long AttemptsDeleted = 0, long WorkersDeleted = 0, int Batches = 0, bool MoreLeft = false,
    long ThroughputRowsDeleted = 0)
{
    public static readonly PruneResult Locked = new(PruneStatus.Locked);
    public static readonly PruneResult NotDue = new(PruneStatus.NotDue);
}

/// <summary>
/// Retention pruning of the queue's history (options section <c>Retention</c>): finished attempts
/// past Retention:AttemptDays, except each shard's latest attempt, and registry rows of workers
/// stopped longer than Retention:StoppedWorkerDays, and per-minute throughput rows past
/// Retention:ThroughputDays (folded into the lifetime totals as they go). Safe from any number of nodes: the prune
/// runs under a session advisory try-lock (one node at a time; the others skip at once), the due
/// time is recorded in <c>maintenance_runs</c> under that lock (once per interval fleet-wide), and
/// each delete is one batch of at most Retention:BatchSize rows in its own short transaction.
/// There is no audit table yet; when one lands, its retention belongs here too.
/// </summary>
public sealed class QueueMaintenance
{
    public const string PruneTask = "prune";

    private readonly NpgsqlDataSource _db;
    private readonly RetentionOptions _options;
    private readonly TimeProvider _time;
    // This process's next look at the fleet-wide due time; read and written by one maintenance loop.
    private DateTimeOffset _nextCheck = DateTimeOffset.MinValue;

    public QueueMaintenance(NpgsqlDataSource db, RetentionOptions options, TimeProvider time)
    {
        OptionsValidationException.ThrowIfAny(options.Validate());
        _db = db;
        _options = options;
        _time = time;
    }

    public RetentionOptions Options => _options;

    /// <summary>
    /// Prunes if the fleet has not pruned within Retention:PruneIntervalMinutes. Cheap when not
    /// due: this process asks the database at most once per interval.
    /// </summary>
    public async Task<PruneResult> PruneIfDueAsync(CancellationToken ct = default)
    {
        var now = _time.GetUtcNow();
        if (now < _nextCheck) return PruneResult.NotDue;
        // Set before running: a failed prune is tried again next interval, not on every loop turn.
        _nextCheck = now + _options.PruneInterval;
        return await RunAsync(onlyIfDue: true, ct);
    }

    /// <summary>Prunes now, unless another node is pruning (<see cref="PruneStatus.Locked"/>).</summary>
    public Task<PruneResult> PruneAsync(CancellationToken ct = default) => RunAsync(onlyIfDue: false, ct);

    private async Task<PruneResult> RunAsync(bool onlyIfDue, CancellationToken ct)
    {
        await using var conn = await _db.OpenConnectionAsync(ct);
        await using (var tryLock = Command(conn, "MaintenanceTryLock"))
        {
            tryLock.Parameters.AddWithValue("task", PruneTask);
            if (!await Locked.SingleAsync(tryLock, ct)) return PruneResult.Locked;
        }
        try
        {
            if (onlyIfDue)
            {
                await using var last = Command(conn, "MaintenanceLastRunGet");
                last.Parameters.AddWithValue("task", PruneTask);
                last.Parameters.Add(DbClock.Now(_time));
                // The age is measured on the database's clock: nodes whose clocks disagree still prune once per interval.
                if (await LastRunAge.FirstOrDefaultAsync(last, ct) is { } age && age < _options.PruneInterval)
                {
                    // Another node pruned recently: look again when its interval ends (an in-process timer).
                    _nextCheck = _time.GetUtcNow() + (_options.PruneInterval - age);
                    return PruneResult.NotDue;
                }
            }

            var (attempts, attemptBatches, attemptsLeft) = await PruneAttemptsAsync(conn, ct);
            var (workers, workerBatches, workersLeft) = await PruneWorkersAsync(conn, ct);
            var (minutes, minuteBatches, minutesLeft) = await PruneThroughputAsync(conn, ct);
            var result = new PruneResult(PruneStatus.Pruned, attempts, workers, attemptBatches + workerBatches + minuteBatches,
                attemptsLeft || workersLeft || minutesLeft, minutes);

            await using var record = Command(conn, "MaintenanceLastRunSet");
            record.Parameters.AddWithValue("task", PruneTask);
            record.Parameters.Add(DbClock.Now(_time));
            record.Parameters.AddWithValue("detail", $"attempts {attempts}, workers {workers}, throughput rows {minutes}, batches {result.Batches}{(result.MoreLeft ? ", more left" : "")}");
            await record.ExecuteNonQueryAsync(ct);
            return result;
        }
        finally
        {
            // A broken connection has already dropped the lock with its session.
            if (conn.FullState == ConnectionState.Open)
            {
                await using var unlock = Command(conn, "MaintenanceUnlock");
                unlock.Parameters.AddWithValue("task", PruneTask);
                await unlock.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
    }

    // Keyset walk: each batch resumes after the last key the previous one deleted.
    private Task<(long Deleted, int Batches, bool MoreLeft)> PruneAttemptsAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        var (afterShard, afterAttempt) = (long.MinValue, int.MinValue);
        return PruneBatchesAsync(conn, "AttemptsPruneBatch", _options.AttemptRetention, async (cmd, t) =>
        {
            cmd.Parameters.AddWithValue("after_shard", afterShard);
            cmd.Parameters.AddWithValue("after_attempt", afterAttempt);
            if (await AttemptsPruned.FirstOrDefaultAsync(cmd, t) is not { } pruned) return 0;
            (afterShard, afterAttempt) = (pruned.LastShard, pruned.LastAttempt);
            return pruned.Deleted;
        }, ct);
    }

    private Task<(long Deleted, int Batches, bool MoreLeft)> PruneWorkersAsync(NpgsqlConnection conn, CancellationToken ct) =>
        PruneBatchesAsync(conn, "WorkersPruneBatch", _options.StoppedWorkerRetention, async (cmd, t) => await cmd.ExecuteNonQueryAsync(t), ct);

    // The statement folds the minutes into throughput_archive and answers how many it deleted.
    private Task<(long Deleted, int Batches, bool MoreLeft)> PruneThroughputAsync(NpgsqlConnection conn, CancellationToken ct) =>
        PruneBatchesAsync(conn, "ThroughputPruneBatch", _options.ThroughputRetention, async (cmd, t) => await MinutesPruned.SingleAsync(cmd, t), ct);

    /// <summary>Runs one batch statement (parameters now (the database's clock unless pinned), keep, batch) until a batch deletes less than
    /// a full batch or MaxBatchesPerPrune is reached (then more is left for the next prune).</summary>
    private async Task<(long Deleted, int Batches, bool MoreLeft)> PruneBatchesAsync(NpgsqlConnection conn, string statement, TimeSpan keep,
        Func<NpgsqlCommand, CancellationToken, Task<long>> run, CancellationToken ct)
    {
        long total = 0;
        for (var batch = 1; batch <= _options.MaxBatchesPerPrune; batch++)
        {
            await using var cmd = Command(conn, statement);
            cmd.Parameters.Add(DbClock.Now(_time));
            cmd.Parameters.AddWithValue("keep", keep);
            cmd.Parameters.AddWithValue("batch", _options.BatchSize);
            var deleted = await run(cmd, ct);
            total += deleted;
            if (deleted < _options.BatchSize) return (total, batch, false);
        }
        return (total, _options.MaxBatchesPerPrune, true);
    }

    // The row mappings of this class's statements (Sql/maintenance.sql), one per statement.

    private static readonly RowMap<bool> Locked = new("MaintenanceTryLock", c =>
    {
        var locked = c.Column<bool>("locked");
        return r => r.Get(locked);
    });

    /// <summary>How long ago the task last ran (database clock); no row when it never ran.</summary>
    private static readonly RowMap<TimeSpan?> LastRunAge = new("MaintenanceLastRunGet", c =>
    {
        var age = c.Column<TimeSpan>("age");
        return r => r.Get(age);
    });

    /// <summary>One batch of attempts deleted, and the last key it deleted (no row: nothing deleted).</summary>
    private static readonly RowMap<(long Deleted, long LastShard, int LastAttempt)?> AttemptsPruned = new("AttemptsPruneBatch", c =>
    {
        var deleted = c.Column<long>("deleted");
        var shardId = c.Column<long>("shard_id");
        var attempt = c.Column<int>("attempt");
        return r => (r.Get(deleted), r.Get(shardId), r.Get(attempt));
    });

    private static readonly RowMap<long> MinutesPruned = new("ThroughputPruneBatch", c =>
    {
        var deleted = c.Column<long>("deleted");
        return r => r.Get(deleted);
    });

    private static NpgsqlCommand Command(NpgsqlConnection conn, string name) => new(SqlCatalog.Get(name), conn);
}
