using Npgsql;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Corpora;

/// <summary>Set-based operator actions on a corpus: re-run and cancel. Each is one statement, one
/// transaction, whatever the number of shards.</summary>
public sealed class CorpusAdmin(NpgsqlDataSource db, TimeProvider time)
{
    /// <summary>Re-queues every dead shard of the corpus with a fresh budget of <paramref name="budget"/> attempts.</summary>
    public Task<IReadOnlyList<long>> RerunFailedAsync(long corpusId, int budget, CancellationToken ct = default) =>
        RerunAsync("ShardsRerunFailed", corpusId, budget, null, ct);

    /// <summary>Re-queues the given shards (dead, succeeded or cancelled ones; queued and running are left alone).</summary>
    public Task<IReadOnlyList<long>> RerunShardsAsync(long corpusId, IReadOnlyList<long> ids, int budget, CancellationToken ct = default) =>
        RerunAsync("ShardsRerunByIds", corpusId, budget, ids.ToArray(), ct);

    private async Task<IReadOnlyList<long>> RerunAsync(string statement, long corpusId, int budget, long[]? ids, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        var list = new List<long>();
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get(statement), conn, tx))
        {
            cmd.Parameters.AddWithValue("corpus_id", corpusId);
            cmd.Parameters.AddWithValue("budget", budget);
            cmd.Parameters.AddWithValue("now", time.GetUtcNow().UtcDateTime);
            if (ids is not null) cmd.Parameters.AddWithValue("ids", ids);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) list.Add(r.GetInt64(0));
        }
        // A re-run shard's earlier segments and file failures are replaced by its next success.
        if (list.Count > 0)
        {
            await using var del = new NpgsqlCommand(SqlCatalog.Get("SegmentsDeleteForShards"), conn, tx);
            del.Parameters.AddWithValue("ids", list.ToArray());
            await del.ExecuteNonQueryAsync(ct);
            await using var notify = new NpgsqlCommand(SqlCatalog.Get("ShardsNotify"), conn, tx);
            notify.Parameters.AddWithValue("queue", "*");
            await notify.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
        return list;
    }

    /// <summary>Cancels the corpus: queued and running shards become cancelled (running workers' results are then refused by the fence).</summary>
    public async Task<int> CancelAsync(long corpusId, CancellationToken ct = default)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var c = new NpgsqlCommand(SqlCatalog.Get("CorpusCancel"), conn, tx))
        {
            c.Parameters.AddWithValue("corpus_id", corpusId);
            c.Parameters.AddWithValue("now", now);
            await c.ExecuteNonQueryAsync(ct);
        }
        int n;
        await using (var s = new NpgsqlCommand(SqlCatalog.Get("ShardsCancelCorpus"), conn, tx))
        {
            s.Parameters.AddWithValue("corpus_id", corpusId);
            s.Parameters.AddWithValue("now", now);
            n = 0;
            await using var r = await s.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) n++;
        }
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
        cmd.Parameters.AddWithValue("now", time.GetUtcNow().UtcDateTime);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
