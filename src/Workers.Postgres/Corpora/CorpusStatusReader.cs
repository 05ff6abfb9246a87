using Npgsql;
using Workers.Core.Queue;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Corpora;

public sealed record FailedFile(string File, string Error);

public sealed record CorpusInfo(long Id, string Name, string Source, string SourceKind, string RootDir, string Pipeline, string Queue,
    int Priority, double ShardSeconds, int Files, int FailedFiles, double AudioSeconds, int Shards, DateTime? CancelledAt, DateTime CreatedAt);

/// <summary>What `workers status CORPUS` shows. Every shard state is present in <see cref="ShardsByState"/>, zero or not.</summary>
public sealed record CorpusStatus(CorpusInfo Corpus, IReadOnlyDictionary<string, int> ShardsByState, double ProcessedSeconds,
    long Segments, IReadOnlyList<FailedFile> FailedFiles, int FailedFilesTotal);

public sealed class CorpusNotFoundException(string name)
    : Exception($"No corpus named '{name}'. `workers status` lists the corpora.");

public sealed class CorpusStatusReader(NpgsqlDataSource db)
{
    /// <summary>At most this many failed files are listed per corpus (the count is always exact).</summary>
    public const int MaxFailedFilesListed = 1000;

    public async Task<CorpusInfo> GetCorpusAsync(string name, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("CorpusGetByName"));
        cmd.Parameters.AddWithValue("name", name);
        return await CorpusByName.FirstOrDefaultAsync(cmd, ct) ?? throw new CorpusNotFoundException(name);
    }

    public async Task<IReadOnlyList<CorpusInfo>> ListAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("CorpusList"));
        return await CorpusList.ListAsync(cmd, ct);
    }

    public async Task<CorpusStatus> GetStatusAsync(string name, CancellationToken ct = default) =>
        await GetStatusAsync(await GetCorpusAsync(name, ct), ct);

    public async Task<CorpusStatus> GetStatusAsync(CorpusInfo corpus, CancellationToken ct = default)
    {
        var byState = ShardStates.All.ToDictionary(s => s.ToDb(), _ => 0);
        double processed = 0;
        long segments = 0;
        await using (var cmd = db.CreateCommand(SqlCatalog.Get("CorpusShardSummary")))
        {
            cmd.Parameters.AddWithValue("corpus_id", corpus.Id);
            foreach (var (state, shards, processedSeconds, stateSegments) in await ShardSummary.ListAsync(cmd, ct))
            {
                byState[state] = shards;
                processed += processedSeconds;
                segments += stateSegments;
            }
        }
        List<FailedFile> failed;
        await using (var cmd = db.CreateCommand(SqlCatalog.Get("CorpusFailedFiles")))
        {
            cmd.Parameters.AddWithValue("corpus_id", corpus.Id);
            cmd.Parameters.AddWithValue("max", MaxFailedFilesListed + 1);
            failed = await FailedFiles.ListAsync(cmd, ct);
        }
        var total = Math.Max(failed.Count, corpus.FailedFiles);
        if (failed.Count > MaxFailedFilesListed) failed.RemoveAt(failed.Count - 1);
        return new CorpusStatus(corpus, byState, processed, segments, failed, total);
    }

    // The row mappings of this class's statements (Sql/corpora.sql), one per statement; the two corpus
    // statements return the same columns.

    private static readonly RowMap<CorpusInfo> CorpusByName = new("CorpusGetByName", CorpusColumns);
    /// <summary>CorpusList's mapping; the dashboard's corpus list reads the same statement.</summary>
    internal static readonly RowMap<CorpusInfo> CorpusList = new("CorpusList", CorpusColumns);

    private static Func<Row, CorpusInfo> CorpusColumns(ResultColumns c)
    {
        var id = c.Column<long>("id");
        var name = c.Column<string>("name");
        var source = c.Column<string>("source");
        var sourceKind = c.Column<string>("source_kind");
        var rootDir = c.Column<string>("root_dir");
        var pipeline = c.Column<string>("pipeline");
        var queue = c.Column<string>("queue");
        var priority = c.Column<int>("priority");
        var shardSeconds = c.Column<double>("shard_seconds");
        var files = c.Column<int>("files");
        var failedFiles = c.Column<int>("failed_files");
        var audioSeconds = c.Column<double>("audio_seconds");
        var shards = c.Column<int>("shards");
        var cancelledAt = c.Column<DateTime?>("cancelled_at");
        var createdAt = c.Column<DateTime>("created_at");
        return r => new CorpusInfo(r.Get(id), r.Get(name), r.Get(source), r.Get(sourceKind), r.Get(rootDir), r.Get(pipeline), r.Get(queue),
            r.Get(priority), r.Get(shardSeconds), r.Get(files), r.Get(failedFiles), r.Get(audioSeconds), r.Get(shards), r.Get(cancelledAt),
            r.Get(createdAt));
    }

    /// <summary>The one mapping of CorpusShardSummary (also read by <see cref="Export.SegmentExport"/>, inside its snapshot).</summary>
    internal static readonly RowMap<(string State, int Shards, double ProcessedSeconds, long Segments)> ShardSummary = new("CorpusShardSummary", c =>
    {
        var state = c.Column<string>("state");
        var shards = c.Column<int>("shards");
        var processed = c.Column<double>("processed_seconds");
        var segments = c.Column<long>("segments");
        return r => (r.Get(state), r.Get(shards), r.Get(processed), r.Get(segments));
    });

    private static readonly RowMap<FailedFile> FailedFiles = new("CorpusFailedFiles", c =>
    {
        var path = c.Column<string>("path");
        var error = c.Column<string>("error");
        return r => new FailedFile(r.Get(path), r.Get(error));
    });
}
