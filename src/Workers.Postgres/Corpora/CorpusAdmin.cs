using System.Globalization;
using Npgsql;
using Workers.Postgres.Dashboard;
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
        RerunAsync("ShardsRerunByIds", cmd =>
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
        RerunAsync("ShardsRerunDeadByFilter", cmd =>
        {
            cmd.Parameters.Add(new NpgsqlParameter("corpus_id", NpgsqlTypes.NpgsqlDbType.Bigint) { Value = (object?)filter.CorpusId ?? DBNull.Value });
            foreach (var (name, value) in new[] { ("queue", filter.Queue), ("node", filter.Node), ("worker", filter.Worker), ("file", filter.File) })
                cmd.Parameters.Add(new NpgsqlParameter(name, NpgsqlTypes.NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value });
        }, budget, audit, _ => null, ct);

    private async Task<IReadOnlyList<long>> RerunAsync(string statement, Action<NpgsqlCommand> bind, int budget, AuditRecord audit,
        Func<IReadOnlyList<long>, string?> detail, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        var list = new List<long>();
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get(statement), conn, tx))
        {
            bind(cmd);
            cmd.Parameters.AddWithValue("budget", budget);
            cmd.Parameters.Add(DbClock.Now(time));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) list.Add(r.GetInt64(0));
        }
        // A re-run shard's earlier segments and file failures are replaced by its next success.
        if (list.Count > 0)
        {
            await using var del = new NpgsqlCommand(SqlCatalog.Get("SegmentsDeleteForShards"), conn, tx);
            del.Parameters.AddWithValue("ids", list.ToArray());
            await del.ExecuteNonQueryAsync(ct);
            await NotifyAsync(conn, tx, "*", ct);
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
            await using var r = await lk.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct)) throw new CorpusActionRefusedException($"Corpus {corpusId} no longer exists.");
            if (r.GetBoolean(2)) throw new CorpusActionRefusedException("The corpus is cancelled; its failed files are not re-run.");
            (queue, priority, ordinal) = (r.GetString(0), r.GetInt32(1), r.GetInt32(3));
        }

        var failed = new List<(int File, double Start, double End, string Error, long Shard)>();
        await using (var take = new NpgsqlCommand(SqlCatalog.Get("FileFailuresTakeSucceeded"), conn, tx))
        {
            take.Parameters.AddWithValue("corpus_id", corpusId);
            await using var r = await take.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) failed.Add((r.GetInt32(0), r.GetDouble(1), r.GetDouble(2), r.GetString(3), r.GetInt64(4)));
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
            shardId = (long)(await ins.ExecuteScalarAsync(ct))!;
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
        await NotifyAsync(conn, tx, queue, ct);
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
        var n = 0;
        await using (var s = new NpgsqlCommand(SqlCatalog.Get("ShardsCancelCorpus"), conn, tx))
        {
            s.Parameters.AddWithValue("corpus_id", corpusId);
            s.Parameters.Add(DbClock.Now(time));
            await using var r = await s.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) n++;
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

    private static async Task NotifyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string queue, CancellationToken ct)
    {
        await using var notify = new NpgsqlCommand(SqlCatalog.Get("ShardsNotify"), conn, tx);
        notify.Parameters.AddWithValue("queue", queue);
        await notify.ExecuteNonQueryAsync(ct);
    }
}
