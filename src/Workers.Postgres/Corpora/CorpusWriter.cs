using Npgsql;
using NpgsqlTypes;
using Workers.Core.Corpora;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Corpora;

/// <summary>Settings a corpus is enqueued with.</summary>
public sealed record EnqueueRequest(string Name, string Pipeline = "vad", string Queue = "default", int Priority = 0, int MaxAttempts = 5);

/// <summary>The corpus name is taken.</summary>
public sealed class CorpusExistsException(string name)
    : Exception($"A corpus named '{name}' already exists. Choose another --name, or see it with `workers status {name}`.");

/// <summary>
/// Writes an enqueue plan in one transaction: corpus row, then files, shards and shard items by
/// binary COPY (several times faster than multi-row INSERT at 400,000 files), then NOTIFY so idle
/// workers start at once. Either all of it is visible or none.
/// </summary>
public sealed class CorpusWriter(NpgsqlDataSource db, TimeProvider time)
{
    public async Task<long> WriteAsync(EnqueuePlan plan, EnqueueRequest request, CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(request.Name)) throw new ArgumentException("The corpus name must not be empty.", nameof(request));
        var now = time.GetUtcNow().UtcDateTime;
        var p = plan.Plan;
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);

        long corpusId;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("CorpusInsert"), conn, tx))
        {
            cmd.Parameters.AddWithValue("name", request.Name);
            cmd.Parameters.AddWithValue("source", plan.Listing.Source);
            cmd.Parameters.AddWithValue("source_kind", plan.Listing.Kind);
            cmd.Parameters.AddWithValue("root_dir", plan.Listing.RootDir);
            cmd.Parameters.AddWithValue("pipeline", request.Pipeline);
            cmd.Parameters.AddWithValue("queue", request.Queue);
            cmd.Parameters.AddWithValue("priority", request.Priority);
            cmd.Parameters.AddWithValue("shard_seconds", p.TargetSeconds);
            cmd.Parameters.AddWithValue("files", plan.FileCount);
            cmd.Parameters.AddWithValue("failed_files", plan.FailedFiles.Count);
            cmd.Parameters.AddWithValue("audio_seconds", plan.AudioSeconds);
            cmd.Parameters.AddWithValue("shards", plan.ShardCount);
            cmd.Parameters.AddWithValue("now", now);
            try
            {
                corpusId = (long)(await cmd.ExecuteScalarAsync(ct))!;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                throw new CorpusExistsException(request.Name);
            }
        }

        await using (var copy = await conn.BeginBinaryImportAsync(SqlCatalog.Get("FilesCopy"), ct))
        {
            for (var i = 0; i < p.Files.Count; i++)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(corpusId, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(i, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(p.Files[i].Path, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(p.Files[i].DurationSeconds, NpgsqlDbType.Double, ct);
                await copy.WriteNullAsync(ct);
            }
            for (var k = 0; k < plan.FailedFiles.Count; k++)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(corpusId, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(p.Files.Count + k, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(plan.FailedFiles[k].Path, NpgsqlDbType.Text, ct);
                await copy.WriteNullAsync(ct);
                await copy.WriteAsync(plan.FailedFiles[k].Reason, NpgsqlDbType.Text, ct);
            }
            await copy.CompleteAsync(ct);
        }

        var ids = new long[p.Shards.Count];
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("ShardIdsReserve"), conn, tx))
        {
            cmd.Parameters.AddWithValue("count", p.Shards.Count);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            for (var i = 0; await r.ReadAsync(ct); i++) ids[i] = r.GetInt64(0);
        }

        await using (var copy = await conn.BeginBinaryImportAsync(SqlCatalog.Get("ShardsCopy"), ct))
        {
            for (var i = 0; i < p.Shards.Count; i++)
            {
                var s = p.Shards[i];
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(ids[i], NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(corpusId, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(s.Ordinal, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(request.Queue, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(request.Priority, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(s.AudioSeconds, NpgsqlDbType.Double, ct);
                await copy.WriteAsync(s.ItemCount, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(request.MaxAttempts, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
                await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            }
            await copy.CompleteAsync(ct);
        }

        await using (var copy = await conn.BeginBinaryImportAsync(SqlCatalog.Get("ShardItemsCopy"), ct))
        {
            for (var i = 0; i < p.Shards.Count; i++)
            {
                var s = p.Shards[i];
                for (var j = 0; j < s.ItemCount; j++)
                {
                    var item = p.Items[s.FirstItem + j];
                    await copy.StartRowAsync(ct);
                    await copy.WriteAsync(ids[i], NpgsqlDbType.Bigint, ct);
                    await copy.WriteAsync(j, NpgsqlDbType.Integer, ct);
                    await copy.WriteAsync(corpusId, NpgsqlDbType.Bigint, ct);
                    await copy.WriteAsync(item.FileIndex, NpgsqlDbType.Integer, ct);
                    await copy.WriteAsync(item.StartSeconds, NpgsqlDbType.Double, ct);
                    await copy.WriteAsync(item.EndSeconds, NpgsqlDbType.Double, ct);
                }
            }
            await copy.CompleteAsync(ct);
        }

        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("ShardsNotify"), conn, tx))
        {
            cmd.Parameters.AddWithValue("queue", request.Queue);
            await cmd.ExecuteNonQueryAsync(ct); // delivered at commit
        }
        await tx.CommitAsync(ct);
        return corpusId;
    }
}
