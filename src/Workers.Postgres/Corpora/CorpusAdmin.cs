using System.Globalization;
using Npgsql;
using Workers.Postgres.Dashboard;
using Workers.Postgres.Queue;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Corpora;

/// <summary>The shard re-queued by <see cref="CorpusAdmin.RerunFailedFilesAsync"/>: its id, the distinct files and the ranges in it.</summary>
public sealed record FailedFilesRerun(long ShardId, int Files, int Ranges);

/// <summary>An action that does not apply to the corpus as it is now (answered 409 by the dashboard).</summary>
public sealed class CorpusActionRefusedException(string message) : Exception(message);

/// <summary>
/// Set-based operator actions on corpora and shards: re-run, cancel, re-run failed files. Each is
/// a fixed number of statements in one transaction, whatever the number of shards, and writes
/// its audit row (<see cref="AuditRecord"/>) in that same transaction: the row exists if and only
/// if the change committed.
/// </summary>
public sealed class CorpusAdmin(NpgsqlDataSource db, TimeProvider time)
{
    /// <summary>Re-queues every dead shard of the corpus with a fresh budget of <paramref name="budget"/> attempts.</summary>
    public Task<IReadOnlyList<long>> RerunFailedAsync(long corpusId, int budget, AuditRecord audit, CancellationToken ct = default) =>
        RerunDeadAsync(new ShardFilter(CorpusId: corpusId), budget, audit, ct);

    /// <summary>Re-queues the given shards (dead, succeeded or cancelled ones; queued and running are left alone).</summary>
    public Task<IReadOnlyList<long>> RerunShardsAsync(long corpusId, IReadOnlyList<long> ids, int budget, AuditRecord audit, CancellationToken ct = default) =>
        RerunAsync(RerunByIds, cmd =>
        {
            cmd.Parameters.AddWithValue("corpus_id", corpusId);
            cmd.Parameters.AddWithValue("ids", ids.ToArray());
        }, budget, audit, done => done.Count < ids.Count
            ? "not re-run (queued, running, or not in this corpus): " + string.Join(", ", ids.Except(done))
            : null, ct);

    /// <summary>
    /// Re-queues every DEAD shard matching <paramref name="filter"/> (its state, cursor and limit
    /// are ignored) in one UPDATE. The caller decides whether an unrestricted filter is meant.
    /// </summary>
    public Task<IReadOnlyList<long>> RerunDeadAsync(ShardFilter filter, int budget, AuditRecord audit, CancellationToken ct = default) =>
        RerunAsync(RerunDeadByFilter, cmd =>
        {
            cmd.Parameters.Add(new NpgsqlParameter("corpus_id", NpgsqlTypes.NpgsqlDbType.Bigint) { Value = (object?)filter.CorpusId ?? DBNull.Value });
            foreach (var (name, value) in new[] { ("queue", filter.Queue), ("node", filter.Node), ("worker", filter.Worker), ("file", filter.File) })
                cmd.Parameters.Add(new NpgsqlParameter(name, NpgsqlTypes.NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value });
        }, budget, audit, _ => null, ct);

    private async Task<IReadOnlyList<long>> RerunAsync(RowMap<long> statement, Action<NpgsqlCommand> bind, int budget, AuditRecord audit,
        Func<IReadOnlyList<long>, string?> detail, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        List<long> list;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get(statement.Statement), conn, tx))
        {
            bind(cmd);
            cmd.Parameters.AddWithValue("budget", budget);
            cmd.Parameters.Add(DbClock.Now(time));
            list = await statement.ListAsync(cmd, ct);
        }
        // A re-run shard's earlier segments and file failures are replaced by its next success.
        if (list.Count > 0)
        {
            await using var del = new NpgsqlCommand(SqlCatalog.Get("SegmentsDeleteForShards"), conn, tx);
            del.Parameters.AddWithValue("ids", list.ToArray());
            await del.ExecuteNonQueryAsync(ct);
            await ShardNotificationListener.NotifyAsync(conn, tx, "*", ct);
        }
        await AuditLog.WriteAsync(conn, tx, audit, list.Count, detail(list), time, ct);
        await tx.CommitAsync(ct);
        return list;
    }

    /// <summary>
    /// Puts the files that failed while processed (file_failures of the corpus's succeeded shards)
    /// into ONE new shard of the corpus: next ordinal, the failed ranges as its items, the
    /// corpus's queue and priority, a budget of <paramref name="budget"/> attempts. Those
    /// file_failures rows are deleted in the same transaction (their errors go into the audit
    /// row's detail), so the failed-file count drops, and comes back only if they fail again.
    /// Null when there is nothing to re-run.
    /// </summary>
    /// <exception cref="CorpusActionRefusedException">The corpus is cancelled.</exception>
    public async Task<FailedFilesRerun?> RerunFailedFilesAsync(long corpusId, int budget, AuditRecord audit, CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        string queue;
        int priority, ordinal;
        await using (var lk = new NpgsqlCommand(SqlCatalog.Get("CorpusLockForNewShard"), conn, tx))
        {
            lk.Parameters.AddWithValue("corpus_id", corpusId);
            var corpus = await LockedForNewShard.FirstOrDefaultAsync(lk, ct)
                ?? throw new CorpusActionRefusedException($"Corpus {corpusId} no longer exists.");
            if (corpus.Cancelled) throw new CorpusActionRefusedException("The corpus is cancelled; its failed files are not re-run.");
            (queue, priority, ordinal) = (corpus.Queue, corpus.Priority, corpus.NextOrdinal);
        }

        List<(int File, double Start, double End, string Error, long Shard)> failed;
        await using (var take = new NpgsqlCommand(SqlCatalog.Get("FileFailuresTakeSucceeded"), conn, tx))
        {
            take.Parameters.AddWithValue("corpus_id", corpusId);
            failed = await FailuresTaken.ListAsync(take, ct);
        }
        if (failed.Count == 0)
        {
            await tx.RollbackAsync(ct);
            return null;
        }
        failed.Sort((a, b) => (a.File, a.Start).CompareTo((b.File, b.Start)));

        long shardId;
        await using (var ins = new NpgsqlCommand(SqlCatalog.Get("ShardInsertOne"), conn, tx))
        {
            ins.Parameters.AddWithValue("corpus_id", corpusId);
            ins.Parameters.AddWithValue("ordinal", ordinal);
            ins.Parameters.AddWithValue("queue", queue);
            ins.Parameters.AddWithValue("priority", priority);
            ins.Parameters.AddWithValue("audio", failed.Sum(f => f.End - f.Start));
            ins.Parameters.AddWithValue("items", failed.Count);
            ins.Parameters.AddWithValue("budget", budget);
            ins.Parameters.Add(DbClock.Now(time));
            shardId = await InsertedShard.SingleAsync(ins, ct);
        }
        await using (var items = new NpgsqlCommand(SqlCatalog.Get("ShardItemsInsertRanges"), conn, tx))
        {
            items.Parameters.AddWithValue("shard_id", shardId);
            items.Parameters.AddWithValue("corpus_id", corpusId);
            items.Parameters.AddWithValue("file_indexes", failed.Select(f => f.File).ToArray());
            items.Parameters.AddWithValue("starts", failed.Select(f => f.Start).ToArray());
            items.Parameters.AddWithValue("ends", failed.Select(f => f.End).ToArray());
            await items.ExecuteNonQueryAsync(ct);
        }
        await using (var count = new NpgsqlCommand(SqlCatalog.Get("CorpusShardCountAdd"), conn, tx))
        {
            count.Parameters.AddWithValue("corpus_id", corpusId);
            count.Parameters.AddWithValue("added", 1);
            await count.ExecuteNonQueryAsync(ct);
        }
        await ShardNotificationListener.NotifyAsync(conn, tx, queue, ct);
        var files = failed.Select(f => f.File).Distinct().Count();
        var detail = string.Create(CultureInfo.InvariantCulture, $"shard {shardId}: {files} file(s), {failed.Count} range(s); errors: ") +
            string.Join("; ", failed.Select(f => string.Create(CultureInfo.InvariantCulture, $"file {f.File} [{f.Start:0.###}-{f.End:0.###} s] (shard {f.Shard}): {f.Error}")));
        await AuditLog.WriteAsync(conn, tx, audit, failed.Count, detail, time, ct);
        await tx.CommitAsync(ct);
        return new FailedFilesRerun(shardId, files, failed.Count);
    }

    /// <summary>Cancels the corpus: queued and running shards become cancelled (running workers' results are then refused by the fence).</summary>
    public async Task<int> CancelAsync(long corpusId, AuditRecord audit, CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var c = new NpgsqlCommand(SqlCatalog.Get("CorpusCancel"), conn, tx))
        {
            c.Parameters.AddWithValue("corpus_id", corpusId);
            c.Parameters.Add(DbClock.Now(time));
            await c.ExecuteNonQueryAsync(ct);
        }
        int n;
        await using (var s = new NpgsqlCommand(SqlCatalog.Get("ShardsCancelCorpus"), conn, tx))
        {
            s.Parameters.AddWithValue("corpus_id", corpusId);
            s.Parameters.Add(DbClock.Now(time));
            n = (await Cancelled.ListAsync(s, ct)).Count;
        }
        await AuditLog.WriteAsync(conn, tx, audit, n, null, time, ct);
        await tx.CommitAsync(ct);
        return n;
    }

    /// <summary>Deletes a corpus and everything under it.</summary>
    public async Task DeleteAsync(long corpusId, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("CorpusDelete"));
        cmd.Parameters.AddWithValue("corpus_id", corpusId);
        cmd.CommandTimeout = 600;
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Benchmarks: every shard of the corpus back to queued.</summary>
    public async Task ResetForBenchAsync(long corpusId, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("ShardsResetForBench"));
        cmd.Parameters.AddWithValue("corpus_id", corpusId);
        cmd.Parameters.Add(DbClock.Now(time));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    // The row mappings of this class's statements (Sql/shards.sql), one per statement.

    private static readonly RowMap<long> RerunByIds = new("ShardsRerunByIds", ShardId);
    private static readonly RowMap<long> RerunDeadByFilter = new("ShardsRerunDeadByFilter", ShardId);
    private static readonly RowMap<long> InsertedShard = new("ShardInsertOne", ShardId);
    private static readonly RowMap<long> Cancelled = new("ShardsCancelCorpus", ShardId);

    private static Func<Row, long> ShardId(ResultColumns c)
    {
        var id = c.Column<long>("id");
        return r => r.Get(id);
    }

    /// <summary>What a new shard of the corpus inherits (its queue and priority), whether the corpus is cancelled, and the next ordinal.</summary>
    private static readonly RowMap<(string Queue, int Priority, bool Cancelled, int NextOrdinal)?> LockedForNewShard = new("CorpusLockForNewShard", c =>
    {
        var queue = c.Column<string>("queue");
        var priority = c.Column<int>("priority");
        var cancelled = c.Column<bool>("cancelled");
        var nextOrdinal = c.Column<int>("next_ordinal");
        return r => (r.Get(queue), r.Get(priority), r.Get(cancelled), r.Get(nextOrdinal));
    });

    private static readonly RowMap<(int File, double Start, double End, string Error, long Shard)> FailuresTaken = new("FileFailuresTakeSucceeded", c =>
    {
        var fileIndex = c.Column<int>("file_index");
        var start = c.Column<double>("start_seconds");
        var end = c.Column<double>("end_seconds");
        var error = c.Column<string>("error");
        var shardId = c.Column<long>("shard_id");
        return r => (r.Get(fileIndex), r.Get(start), r.Get(end), r.Get(error), r.Get(shardId));
    });

}
