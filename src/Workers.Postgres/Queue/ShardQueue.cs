using Npgsql;
using NpgsqlTypes;
using Workers.Core.Options;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Queue;

/// <summary>
/// The shard queue over PostgreSQL (DESIGN.md, "Shard lifecycle"). Claims use
/// <c>FOR UPDATE SKIP LOCKED</c>; every state change made on behalf of a worker is fenced by
/// (shard id, attempt, lease owner, state = running, lease unexpired), so a worker that lost its
/// lease can neither renew it nor write results. Every comparison runs on the database's clock
/// (<see cref="DbClock"/>): the injected <see cref="TimeProvider"/> pins it only in tests.
/// </summary>
public sealed class ShardQueue
{
    private readonly NpgsqlDataSource _db;
    private readonly QueueOptions _options;
    private readonly TimeProvider _time;
    private readonly Func<double> _random01;

    public ShardQueue(NpgsqlDataSource db, QueueOptions options, TimeProvider time, Func<double>? random01 = null)
    {
        OptionsValidationException.ThrowIfAny(options.Validate());
        _db = db;
        _options = options;
        _time = time;
        _random01 = random01 ?? Random.Shared.NextDouble;
    }

    public QueueOptions Options => _options;

    /// <summary>Claims up to <paramref name="max"/> shards of <paramref name="queues"/>; starts an attempt row for each.</summary>
    /// <param name="pipelines">Only shards of corpora with one of these pipelines (the ones the worker has loaded); null: any.</param>
    public async Task<IReadOnlyList<ClaimedShard>> ClaimAsync(WorkerIdentity who, IReadOnlyList<string> queues, int max = 1, CancellationToken ct = default,
        IReadOnlyList<string>? pipelines = null)
    {
        await using var cmd = _db.CreateCommand(SqlCatalog.Get("ShardClaim"));
        cmd.Parameters.AddWithValue("queues", queues.ToArray());
        cmd.Parameters.Add(new NpgsqlParameter("pipelines", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = (object?)pipelines?.ToArray() ?? DBNull.Value });
        cmd.Parameters.Add(DbClock.Now(_time));
        cmd.Parameters.AddWithValue("max", max);
        cmd.Parameters.AddWithValue("owner", who.Worker);
        cmd.Parameters.AddWithValue("node", who.Node);
        cmd.Parameters.AddWithValue("gpu", (object?)who.Gpu ?? DBNull.Value);
        cmd.Parameters.AddWithValue("provider", (object?)who.ExecutionProvider ?? DBNull.Value);
        cmd.Parameters.AddWithValue("lease", _options.Lease);
        return await Claimed.ListAsync(cmd, ct);
    }

    /// <summary>Renews the lease and reports progress. False: the lease is lost; stop work and write nothing.</summary>
    public async Task<bool> HeartbeatAsync(ClaimedShard shard, WorkerIdentity who, double processedSeconds, CancellationToken ct = default)
    {
        await using var cmd = _db.CreateCommand(SqlCatalog.Get("ShardHeartbeat"));
        AddFence(cmd, shard, who);
        cmd.Parameters.AddWithValue("lease", _options.Lease);
        cmd.Parameters.AddWithValue("processed", processedSeconds);
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>
    /// Completes a shard in one transaction: fenced state change first (it takes the row lock),
    /// then the segments and file failures by binary COPY, then the attempt row, and last the
    /// minute's throughput row (shared by every completion in that minute, so its lock is held
    /// only for the commit). False: the lease was lost and nothing was written.
    /// </summary>
    /// <returns>True when this attempt's results are recorded: by this call, or by an earlier try of it
    /// whose commit went through although its answer was lost. False: the lease was not ours any more
    /// and nothing was written.</returns>
    public async Task<bool> CompleteAsync(ClaimedShard shard, WorkerIdentity who, IReadOnlyList<SegmentRow> segments,
        IReadOnlyList<FileFailureRow>? fileFailures = null, string? logTail = null, CancellationToken ct = default,
        IReadOnlyList<SegmentResultRow>? results = null)
    {
        await using var conn = await _db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        DateTime now; // the database's time of this transaction, for the file failures' created_at
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("ShardComplete"), conn, tx))
        {
            AddFence(cmd, shard, who);
            cmd.Parameters.AddWithValue("segments", segments.Count);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            var completed = Completed.Bind(r);
            if (!await r.ReadAsync(ct))
            {
                await r.DisposeAsync();
                await tx.RollbackAsync(ct);
                // Refused by the fence. If an earlier try of this very call committed and only its
                // answer was lost (the connection died during COMMIT), the attempt row says so:
                // the results are recorded, once, and the caller must not report a lost lease.
                return await AttemptSucceededAsync(conn, shard, who, ct);
            }
            now = completed.Read();
        }

        if (segments.Count > 0)
        {
            await using var copy = await conn.BeginBinaryImportAsync(SqlCatalog.Get("SegmentsCopy"), ct);
            foreach (var s in segments)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(shard.CorpusId, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(shard.Id, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(s.FileIndex, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(s.StartSeconds, NpgsqlDbType.Double, ct);
                await copy.WriteAsync(s.EndSeconds, NpgsqlDbType.Double, ct);
            }
            await copy.CompleteAsync(ct);
        }

        if (results is { Count: > 0 })
        {
            // The model stages' results, in the same fenced transaction as their segments (009).
            await using var copy = await conn.BeginBinaryImportAsync(SqlCatalog.Get("SegmentResultsCopy"), ct);
            foreach (var r in results)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(shard.CorpusId, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(shard.Id, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(r.FileIndex, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(r.StartSeconds, NpgsqlDbType.Double, ct);
                await copy.WriteAsync(r.Stage, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(r.ResultJson, NpgsqlDbType.Jsonb, ct);
            }
            await copy.CompleteAsync(ct);
        }
        if (results is not null)
        {
            await using var set = new NpgsqlCommand(SqlCatalog.Get("ShardStageResultsSet"), conn, tx);
            set.Parameters.AddWithValue("id", shard.Id);
            set.Parameters.AddWithValue("results", results.Count);
            await set.ExecuteNonQueryAsync(ct);
        }

        await using (var del = new NpgsqlCommand(SqlCatalog.Get("FileFailuresDeleteForShard"), conn, tx))
        {
            del.Parameters.AddWithValue("id", shard.Id);
            await del.ExecuteNonQueryAsync(ct);
        }
        if (fileFailures is { Count: > 0 })
        {
            await using var copy = await conn.BeginBinaryImportAsync(SqlCatalog.Get("FileFailuresCopy"), ct);
            foreach (var f in fileFailures)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(shard.CorpusId, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(f.FileIndex, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(shard.Id, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(shard.Attempt, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(f.StartSeconds, NpgsqlDbType.Double, ct);
                await copy.WriteAsync(f.EndSeconds, NpgsqlDbType.Double, ct);
                await copy.WriteAsync(f.Error, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            }
            await copy.CompleteAsync(ct);
        }

        await FinishAttemptAsync(conn, tx, shard, "succeeded", null, logTail, new Throughput(shard.AudioSeconds, Succeeded: 1, Failed: 0), ct);
        // Delivered at commit: a worker waiting for its queues to drain (--until-idle, or idle between polls) learns
        // at once that a running shard ended, instead of at its next poll (1 s, which was ~10% of a 2-hour bench run).
        await ShardNotificationListener.NotifyAsync(conn, tx, shard.Queue, ct);
        await tx.CommitAsync(ct);
        return true;
    }

    private static async Task<bool> AttemptSucceededAsync(NpgsqlConnection conn, ClaimedShard shard, WorkerIdentity who, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(SqlCatalog.Get("ShardAttemptSucceededBy"), conn);
        cmd.Parameters.AddWithValue("id", shard.Id);
        cmd.Parameters.AddWithValue("attempt", shard.Attempt);
        cmd.Parameters.AddWithValue("worker", who.Worker);
        return await AttemptSucceeded.SingleAsync(cmd, ct);
    }

    /// <summary>Fails an attempt: retried after an exponential backoff with jitter, or dead once the budget is spent.</summary>
    public async Task<FailOutcome> FailAsync(ClaimedShard shard, WorkerIdentity who, ShardFailure failure, CancellationToken ct = default)
    {
        await using var conn = await _db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        string? state;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("ShardFail"), conn, tx))
        {
            AddFence(cmd, shard, who);
            cmd.Parameters.AddWithValue("retry_delay", _options.RetryDelay(shard.Attempt, _random01()));
            cmd.Parameters.AddWithValue("error", $"{failure.ErrorType}: {failure.Message}");
            state = await Failed.FirstOrDefaultAsync(cmd, ct);
        }
        if (state is null)
        {
            await tx.RollbackAsync(ct);
            return FailOutcome.LeaseLost;
        }
        await FinishAttemptAsync(conn, tx, shard, "failed", failure, failure.LogTail, new Throughput(0, Succeeded: 0, Failed: 1), ct);
        await tx.CommitAsync(ct);
        return state == "dead" ? FailOutcome.Dead : FailOutcome.Retrying;
    }

    /// <summary>Gives a shard back without spending an attempt (drain). False if it was no longer ours.</summary>
    public async Task<bool> ReleaseAsync(ClaimedShard shard, WorkerIdentity who, string reason, CancellationToken ct = default)
    {
        await using var conn = await _db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("ShardRelease"), conn, tx))
        {
            AddFence(cmd, shard, who);
            if (await cmd.ExecuteNonQueryAsync(ct) != 1)
            {
                await tx.RollbackAsync(ct);
                return false;
            }
        }
        await FinishAttemptAsync(conn, tx, shard, "released", new ShardFailure("Released", reason), null, null, ct);
        await tx.CommitAsync(ct);
        await NotifyAsync(shard.Queue, ct);
        return true;
    }

    /// <summary>
    /// Re-queues running shards whose lease expired. Safe from any number of nodes: the rows are
    /// taken with SKIP LOCKED, so two rescuers never handle one shard.
    /// </summary>
    public async Task<IReadOnlyList<RescuedShard>> RescueExpiredAsync(int max = 1000, CancellationToken ct = default)
    {
        await using var cmd = _db.CreateCommand(SqlCatalog.Get("ShardRescueExpired"));
        cmd.Parameters.Add(DbClock.Now(_time));
        cmd.Parameters.AddWithValue("max", max);
        var list = await Rescued.ListAsync(cmd, ct);
        if (list.Any(s => s.State == "queued")) await NotifyAsync(null, ct);
        return list;
    }

    public async Task<IReadOnlyList<ShardItem>> GetItemsAsync(long shardId, CancellationToken ct = default)
    {
        await using var cmd = _db.CreateCommand(SqlCatalog.Get("ShardItemsGet"));
        cmd.Parameters.AddWithValue("id", shardId);
        return await Items.ListAsync(cmd, ct);
    }

    /// <summary>(queued, running) counts over <paramref name="queues"/>: both zero means idle.</summary>
    public async Task<(long Queued, long Running)> ActiveCountsAsync(IReadOnlyList<string> queues, CancellationToken ct = default,
        IReadOnlyList<string>? pipelines = null)
    {
        await using var cmd = _db.CreateCommand(SqlCatalog.Get("ShardsActiveCount"));
        cmd.Parameters.AddWithValue("queues", queues.ToArray());
        cmd.Parameters.Add(new NpgsqlParameter("pipelines", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = (object?)pipelines?.ToArray() ?? DBNull.Value });
        return await ActiveCounts.SingleAsync(cmd, ct);
    }

    /// <summary>Wakes listening workers. <paramref name="queue"/> null wakes every queue.</summary>
    public async Task NotifyAsync(string? queue, CancellationToken ct = default)
    {
        await using var conn = await _db.OpenConnectionAsync(ct);
        await ShardNotificationListener.NotifyAsync(conn, null, queue ?? "*", ct);
    }

    // The row mappings of this class's statements (Sql/shards.sql), one per statement.

    private static readonly RowMap<ClaimedShard> Claimed = new("ShardClaim", c =>
    {
        var id = c.Column<long>("id");
        var corpusId = c.Column<long>("corpus_id");
        var attempt = c.Column<int>("attempt");
        var maxAttempts = c.Column<int>("max_attempts");
        var queue = c.Column<string>("queue");
        var audioSeconds = c.Column<double>("audio_seconds");
        var itemCount = c.Column<int>("item_count");
        var pipeline = c.Column<string>("pipeline");
        return r => new ClaimedShard(r.Get(id), r.Get(corpusId), r.Get(attempt), r.Get(maxAttempts), r.Get(queue), r.Get(audioSeconds),
            r.Get(itemCount)) { Pipeline = r.Get(pipeline) };
    });

    /// <summary>The database's time of the completing transaction.</summary>
    private static readonly RowMap<DateTime> Completed = new("ShardComplete", c =>
    {
        var finishedAt = c.Column<DateTime>("finished_at");
        return r => r.Get(finishedAt);
    });

    private static readonly RowMap<bool> AttemptSucceeded = new("ShardAttemptSucceededBy", c =>
    {
        var succeeded = c.Column<bool>("succeeded");
        return r => r.Get(succeeded);
    });

    /// <summary>The state the failed shard went to: queued (retrying) or dead.</summary>
    private static readonly RowMap<string> Failed = new("ShardFail", c =>
    {
        var state = c.Column<string>("state");
        return r => r.Get(state);
    });

    private static readonly RowMap<RescuedShard> Rescued = new("ShardRescueExpired", c =>
    {
        var id = c.Column<long>("id");
        var attempt = c.Column<int>("attempt");
        var state = c.Column<string>("state");
        return r => new RescuedShard(r.Get(id), r.Get(attempt), r.Get(state));
    });

    private static readonly RowMap<ShardItem> Items = new("ShardItemsGet", c =>
    {
        var ordinal = c.Column<int>("ordinal");
        var fileIndex = c.Column<int>("file_index");
        var path = c.Column<string>("path");
        var start = c.Column<double>("start_seconds");
        var end = c.Column<double>("end_seconds");
        var rootDir = c.Column<string>("root_dir");
        var fileSeconds = c.Column<double?>("duration_seconds");
        return r => new ShardItem(r.Get(ordinal), r.Get(fileIndex), r.Get(path), r.Get(start), r.Get(end), r.Get(rootDir), r.Get(fileSeconds));
    });

    private static readonly RowMap<(long Queued, long Running)> ActiveCounts = new("ShardsActiveCount", c =>
    {
        var queued = c.Column<long>("queued");
        var running = c.Column<long>("running");
        return r => (r.Get(queued), r.Get(running));
    });

    private void AddFence(NpgsqlCommand cmd, ClaimedShard shard, WorkerIdentity who)
    {
        cmd.Parameters.AddWithValue("id", shard.Id);
        cmd.Parameters.AddWithValue("attempt", shard.Attempt);
        cmd.Parameters.AddWithValue("owner", who.Worker);
        cmd.Parameters.Add(DbClock.Now(_time));
    }

    /// <summary>The UTC minute <paramref name="at"/> falls in: the key of throughput_minutes (the statements
    /// compute it on the database's clock, date_bin('1 minute', ...); this is for tests and readers).</summary>
    public static DateTime MinuteOf(DateTime at) =>
        new(at.Ticks - at.Ticks % TimeSpan.TicksPerMinute, DateTimeKind.Utc);

    /// <summary>Rows per minute in throughput_minutes: concurrent completions spread over them (migration 007).</summary>
    public const int ThroughputSlots = 64;

    /// <summary>What an outcome adds to the minute's throughput row.</summary>
    private readonly record struct Throughput(double Audio, int Succeeded, int Failed);

    /// <summary>
    /// Finishes the attempt row and then, when <paramref name="throughput"/> is given, adds to the
    /// minute's throughput row of the shard's slot, which must stay the transaction's last statement
    /// (migration 007). Both go in one batch: one round trip, in that order.
    /// </summary>
    private async Task FinishAttemptAsync(NpgsqlConnection conn, NpgsqlTransaction tx, ClaimedShard shard,
        string outcome, ShardFailure? failure, string? logTail, Throughput? throughput, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(conn, tx);
        var finish = new NpgsqlBatchCommand(SqlCatalog.Get("ShardAttemptFinish"));
        finish.Parameters.AddWithValue("id", shard.Id);
        finish.Parameters.AddWithValue("attempt", shard.Attempt);
        finish.Parameters.Add(DbClock.Now(_time));
        finish.Parameters.AddWithValue("outcome", outcome);
        finish.Parameters.AddWithValue("error_type", (object?)failure?.ErrorType ?? DBNull.Value);
        finish.Parameters.AddWithValue("error_message", (object?)failure?.Message ?? DBNull.Value);
        finish.Parameters.AddWithValue("error_stack", (object?)failure?.Stack ?? DBNull.Value);
        finish.Parameters.AddWithValue("log_tail", (object?)logTail ?? DBNull.Value);
        batch.BatchCommands.Add(finish);
        if (throughput is { } t)
        {
            var add = new NpgsqlBatchCommand(SqlCatalog.Get("ThroughputAdd"));
            add.Parameters.Add(DbClock.Now(_time));
            add.Parameters.AddWithValue("slot", (short)(shard.Id % ThroughputSlots));
            add.Parameters.AddWithValue("audio", t.Audio);
            add.Parameters.AddWithValue("succeeded", (long)t.Succeeded);
            add.Parameters.AddWithValue("failed", (long)t.Failed);
            batch.BatchCommands.Add(add);
        }
        await batch.ExecuteNonQueryAsync(ct);
    }
}
