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
        return (await CorpusStageResults.ListAsync(cmd, ct)).ToDictionary(c => c.CorpusId, c => c.Results);
    }

    /// <summary>Pipelines with queued shards that no running worker (heartbeat within <see cref="WorkerRegistry.StaleAfter"/>) serves.</summary>
    public async Task<IReadOnlyList<UnservablePipeline>> UnservableAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("DashboardUnservableShards"));
        cmd.Parameters.AddWithValue("fresh_after", time.GetUtcNow().UtcDateTime - WorkerRegistry.StaleAfter(queue));
        return await Unservable.ListAsync(cmd, ct);
    }

    /// <summary>The first <paramref name="max"/> stage results of shard <paramref name="id"/>.</summary>
    public async Task<IReadOnlyList<ShardStageResultRow>> ShardResultsAsync(long id, int max, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("DashboardShardStageResults"));
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("max", max);
        return await ShardStageResults.ListAsync(cmd, ct);
    }

    // The row mappings of this class's statements (Sql/stages.sql), one per statement.

    private static readonly RowMap<(long CorpusId, long Results)> CorpusStageResults = new("DashboardCorpusStageResults", c =>
    {
        var corpusId = c.Column<long>("corpus_id");
        var results = c.Column<long>("stage_results");
        return r => (r.Get(corpusId), r.Get(results));
    });

    private static readonly RowMap<UnservablePipeline> Unservable = new("DashboardUnservableShards", c =>
    {
        var pipeline = c.Column<string>("pipeline");
        var shards = c.Column<int>("shards");
        var audio = c.Column<double>("audio_seconds");
        return r => new UnservablePipeline(r.Get(pipeline), r.Get(shards), r.Get(audio));
    });

    private static readonly RowMap<ShardStageResultRow> ShardStageResults = new("DashboardShardStageResults", c =>
    {
        var fileIndex = c.Column<int>("file_index");
        var path = c.Column<string>("path");
        var start = c.Column<double>("start_seconds");
        var stage = c.Column<string>("stage");
        var result = c.Column<string>("result");
        return r => new ShardStageResultRow(r.Get(fileIndex), r.Get(path), r.Get(start), r.Get(stage), r.Get(result));
    });
}
