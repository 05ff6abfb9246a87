using Npgsql;
using Workers.Core.Options;
using Workers.Postgres.Fleet;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Dashboard;

/// <summary>Queued shards of one pipeline that no running worker serves.</summary>
public sealed record UnservablePipeline(string Pipeline, int Shards, double AudioSeconds);

/// <summary>One model stage's result for one segment, for the shard page.</summary>
public sealed record ShardStageResultRow(int FileIndex, string Path, double StartSeconds, string Stage, string ResultJson);

/// <summary>
/// What the dashboard shows of pipelines of stages (issue 15): stage results per corpus (from the
/// per-shard counter), queued shards no running worker can take, and a shard's results.
/// </summary>
public sealed class StageReader(NpgsqlDataSource db, TimeProvider time, QueueOptions queue)
{
    /// <summary>Stage results written per corpus id (corpora without any are absent).</summary>
    public async Task<IReadOnlyDictionary<long, long>> ResultsPerCorpusAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("DashboardCorpusStageResults"));
        var counts = new Dictionary<long, long>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) counts[r.GetInt64(0)] = r.GetInt64(1);
        return counts;
    }

    /// <summary>Pipelines with queued shards that no running worker (heartbeat within <see cref="WorkerRegistry.StaleAfter"/>) serves.</summary>
    public async Task<IReadOnlyList<UnservablePipeline>> UnservableAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("DashboardUnservableShards"));
        cmd.Parameters.AddWithValue("fresh_after", time.GetUtcNow().UtcDateTime - WorkerRegistry.StaleAfter(queue));
        var list = new List<UnservablePipeline>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new UnservablePipeline(r.GetString(0), r.GetInt32(1), r.GetDouble(2)));
        return list;
    }

    /// <summary>The first <paramref name="max"/> stage results of shard <paramref name="id"/>.</summary>
    public async Task<IReadOnlyList<ShardStageResultRow>> ShardResultsAsync(long id, int max, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("DashboardShardStageResults"));
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("max", max);
        var list = new List<ShardStageResultRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new ShardStageResultRow(r.GetInt32(0), r.GetString(1), r.GetDouble(2), r.GetString(3), r.GetString(4)));
        return list;
    }
}
