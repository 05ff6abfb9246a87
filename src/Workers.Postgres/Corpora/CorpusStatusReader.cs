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
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) throw new CorpusNotFoundException(name);
        return ReadCorpus(r);
    }

    public async Task<IReadOnlyList<CorpusInfo>> ListAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("CorpusList"));
        var list = new List<CorpusInfo>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(ReadCorpus(r));
        return list;
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
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                byState[r.GetString(0)] = r.GetInt32(1);
                processed += r.GetDouble(2);
                segments += r.GetInt64(3);
            }
        }
        var failed = new List<FailedFile>();
        await using (var cmd = db.CreateCommand(SqlCatalog.Get("CorpusFailedFiles")))
        {
            cmd.Parameters.AddWithValue("corpus_id", corpus.Id);
            cmd.Parameters.AddWithValue("max", MaxFailedFilesListed + 1);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) failed.Add(new FailedFile(r.GetString(0), r.GetString(1)));
        }
        var total = Math.Max(failed.Count, corpus.FailedFiles);
        if (failed.Count > MaxFailedFilesListed) failed.RemoveAt(failed.Count - 1);
        return new CorpusStatus(corpus, byState, processed, segments, failed, total);
    }

    private static CorpusInfo ReadCorpus(NpgsqlDataReader r) => new(
        r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6),
        r.GetInt32(7), r.GetDouble(8), r.GetInt32(9), r.GetInt32(10), r.GetDouble(11), r.GetInt32(12),
        r.IsDBNull(13) ? null : r.GetDateTime(13), r.GetDateTime(14));
}
