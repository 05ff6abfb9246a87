using Npgsql;
using NpgsqlTypes;
using Workers.Core.Queue;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Dashboard;

/// <summary>
/// The dashboard's reads. Every list is bounded (keyset pages, capped item and attempt lists); the
/// costs per call are written beside each statement in <c>Sql/dashboard.sql</c>.
/// </summary>
public sealed class DashboardReader(NpgsqlDataSource db, TimeProvider time)
{
    /// <summary>The most shards one page returns, whatever the caller asks.</summary>
    public const int MaxPageSize = 500;
    /// <summary>Items, attempts and file failures listed per shard (counts stay exact in the shard row).</summary>
    public const int MaxListed = 1000;

    /// <summary>The window over which the fleet's recent rate is measured.</summary>
    public static readonly TimeSpan RateWindow = TimeSpan.FromMinutes(10);

    public async Task<IReadOnlyList<CorpusProgress>> CorporaAsync(CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        var counts = new Dictionary<long, (Dictionary<string, int> States, double Processed, long Segments)>();
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardCorpusShardCounts"), conn))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
            {
                var id = r.GetInt64(0);
                if (!counts.TryGetValue(id, out var c))
                    c = (ShardStates.All.ToDictionary(s => s.ToDb(), _ => 0), 0, 0);
                c.States[r.GetString(1)] = r.GetInt32(2);
                counts[id] = (c.States, c.Processed + r.GetDouble(3), c.Segments + r.GetInt64(4));
            }
        var fileFailures = new Dictionary<long, int>();
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardFileFailureCounts"), conn))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) fileFailures[r.GetInt64(0)] = r.GetInt32(1);
        var recent = await RecentByCorpusAsync(conn, ct);
        var list = new List<CorpusProgress>();
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("CorpusList"), conn))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
            {
                var id = r.GetInt64(0);
                var c = counts.TryGetValue(id, out var x) ? x : (ShardStates.All.ToDictionary(s => s.ToDb(), _ => 0), 0, 0);
                list.Add(new CorpusProgress(id, r.GetString(1), r.GetString(6), r.GetInt32(7), r.GetString(5), r.GetInt32(9), r.GetDouble(11),
                    c.Item2, c.Item1, c.Item3, r.GetInt32(10) + fileFailures.GetValueOrDefault(id), !r.IsDBNull(13), r.GetDateTime(14),
                    recent.GetValueOrDefault(id)));
            }
        return list;
    }

    /// <summary>
    /// Audio seconds of shards that succeeded within <see cref="RateWindow"/>, fleet-wide: the rate
    /// alone, without the per-corpus counts of <see cref="CorporaAsync"/> (one index range read).
    /// </summary>
    public async Task<double> RecentAudioSecondsAsync(CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        return (await RecentByCorpusAsync(conn, ct)).Values.Sum();
    }

    /// <summary>Per corpus, audio seconds of shards that succeeded within <see cref="RateWindow"/> (DashboardRecentRate).</summary>
    private async Task<Dictionary<long, double>> RecentByCorpusAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        var recent = new Dictionary<long, double>();
        await using var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardRecentRate"), conn);
        cmd.Parameters.Add(DbClock.Now(time));
        cmd.Parameters.AddWithValue("window", RateWindow);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) recent[r.GetInt64(0)] = r.GetDouble(1);
        return recent;
    }

    public async Task<IReadOnlyList<ShardRow>> ShardsAsync(ShardFilter f, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("DashboardShardsPage"));
        cmd.Parameters.AddWithValue("after", f.After);
        cmd.Parameters.Add(new NpgsqlParameter("corpus_id", NpgsqlDbType.Bigint) { Value = (object?)f.CorpusId ?? DBNull.Value });
        AddText(cmd, "state", f.State);
        AddText(cmd, "queue", f.Queue);
        AddText(cmd, "worker", f.Worker);
        AddText(cmd, "node", f.Node);
        AddText(cmd, "file", f.File);
        cmd.Parameters.AddWithValue("limit", Math.Clamp(f.Limit, 1, MaxPageSize));
        var list = new List<ShardRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(ReadShard(r));
        return list;
    }

    /// <summary>One shard with its items, attempts (newest first), file failures and segment count; null when there is none.</summary>
    public async Task<ShardDetail?> ShardAsync(long id, CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        ShardRow shard;
        DateTime? leaseExpires, heartbeat;
        DateTime created;
        string root;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardGet"), conn))
        {
            cmd.Parameters.AddWithValue("id", id);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct)) return null;
            shard = ReadShard(r);
            leaseExpires = Date(r, 18);
            heartbeat = Date(r, 19);
            created = r.GetDateTime(20);
            root = r.GetString(21);
        }
        var items = new List<ShardItemRow>();
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardItems"), conn))
        {
            cmd.Parameters.AddWithValue("id", id);
            cmd.Parameters.AddWithValue("max", MaxListed);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                items.Add(new ShardItemRow(r.GetInt32(0), r.GetInt32(1), r.GetString(2), r.GetDouble(3), r.GetDouble(4)));
        }
        var attempts = new List<ShardAttemptRow>();
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardAttempts"), conn))
        {
            cmd.Parameters.AddWithValue("id", id);
            cmd.Parameters.AddWithValue("max", MaxListed);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                attempts.Add(new ShardAttemptRow(r.GetInt32(0), r.GetString(1), r.GetString(2), Str(r, 3), Str(r, 4), r.GetDateTime(5), Date(r, 6),
                    r.GetString(7), Str(r, 8), Str(r, 9), Str(r, 10), Str(r, 11)));
        }
        var failures = new List<ShardFileFailureRow>();
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardFileFailures"), conn))
        {
            cmd.Parameters.AddWithValue("id", id);
            cmd.Parameters.AddWithValue("max", MaxListed);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                failures.Add(new ShardFileFailureRow(r.GetString(0), r.GetInt32(1), r.GetDouble(2), r.GetDouble(3), r.GetString(4)));
        }
        long segments;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardSegmentCount"), conn))
        {
            cmd.Parameters.AddWithValue("id", id);
            segments = (long)(await cmd.ExecuteScalarAsync(ct))!;
        }
        return new ShardDetail(shard, leaseExpires, heartbeat, created, root, items, attempts, failures, segments);
    }

    /// <summary>The first <paramref name="max"/> segments of a shard, in file and time order.</summary>
    public async Task<IReadOnlyList<ShardSegmentRow>> ShardSegmentsAsync(long id, int max, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("DashboardShardSegments"));
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("max", Math.Clamp(max, 1, MaxListed));
        var list = new List<ShardSegmentRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new ShardSegmentRow(r.GetInt32(0), r.GetString(1), r.GetDouble(2), r.GetDouble(3)));
        return list;
    }

    /// <summary>Corpora that have failed files, by name, at most <paramref name="max"/>.</summary>
    public async Task<IReadOnlyList<FailedFileCorpus>> FailedFileCorporaAsync(int max, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("DashboardFailedFileCorpora"));
        cmd.Parameters.AddWithValue("max", Math.Clamp(max, 1, MaxPageSize));
        var list = new List<FailedFileCorpus>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new FailedFileCorpus(r.GetInt64(0), r.GetString(1), r.GetInt32(2), r.GetInt32(3)));
        return list;
    }

    /// <summary>One page of a corpus's failed files with file index above <paramref name="after"/> (keyset), in file order.</summary>
    public async Task<IReadOnlyList<FailedFileRow>> FailedFilesAsync(long corpusId, int after, int limit, CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        bool enqueueFailures;
        await using (var count = new NpgsqlCommand(SqlCatalog.Get("DashboardCorpusEnqueueFailures"), conn))
        {
            count.Parameters.AddWithValue("corpus_id", corpusId);
            enqueueFailures = await count.ExecuteScalarAsync(ct) is int n && n > 0;
        }
        return await FailedFilesPageAsync(conn, corpusId, enqueueFailures, after, limit, ct);
    }

    /// <summary>The first <paramref name="limit"/> failed files of a corpus listed by <see cref="FailedFileCorporaAsync"/>, whose
    /// enqueue failures that list has read already (one statement, not two).</summary>
    public async Task<IReadOnlyList<FailedFileRow>> FailedFilesAsync(FailedFileCorpus corpus, int limit, CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        return await FailedFilesPageAsync(conn, corpus.CorpusId, corpus.EnqueueFailedFiles > 0, -1, limit, ct);
    }

    private static async Task<IReadOnlyList<FailedFileRow>> FailedFilesPageAsync(NpgsqlConnection conn, long corpusId, bool enqueueFailures, int after,
        int limit, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardFailedFilesPage"), conn);
        cmd.Parameters.AddWithValue("corpus_id", corpusId);
        cmd.Parameters.AddWithValue("enqueue_failures", enqueueFailures);
        cmd.Parameters.AddWithValue("after", after);
        cmd.Parameters.AddWithValue("limit", Math.Clamp(limit, 1, MaxPageSize));
        var list = new List<FailedFileRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new FailedFileRow(r.GetInt32(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetInt64(3), r.IsDBNull(4) ? null : r.GetInt32(4)));
        return list;
    }

    public async Task<IReadOnlyList<PausedQueue>> PausedQueuesAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("QueuePausedList"));
        var list = new List<PausedQueue>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new PausedQueue(r.GetString(0), r.GetString(1), r.GetDateTime(2)));
        return list;
    }

    public async Task<MetricsSnapshot> MetricsAsync(CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        var byState = ShardStates.All.ToDictionary(s => s.ToDb(), _ => 0L);
        double processed = 0;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardStateCounts"), conn))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
            {
                byState[r.GetString(0)] = r.GetInt64(1);
                processed += r.GetDouble(2);
            }
        long corpora;
        double enqueued;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardCorpusTotals"), conn))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            await r.ReadAsync(ct);
            corpora = r.GetInt64(0);
            enqueued = r.GetDouble(1);
        }
        var recent = (await RecentByCorpusAsync(conn, ct)).Values.Sum();
        int paused = 0;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("QueuePausedList"), conn))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) paused++;
        return new MetricsSnapshot(byState, processed, corpora, enqueued, recent, paused);
    }

    public async Task<IReadOnlyList<AuditEntry>> AuditAsync(long before, int limit, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("AuditPage"));
        cmd.Parameters.AddWithValue("before", before);
        cmd.Parameters.AddWithValue("limit", Math.Clamp(limit, 1, MaxPageSize));
        var list = new List<AuditEntry>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new AuditEntry(r.GetInt64(0), r.GetDateTime(1), r.GetString(2), Str(r, 3), r.GetString(4), r.GetString(5), r.GetInt32(6), Str(r, 7)));
        return list;
    }

    private static void AddText(NpgsqlCommand cmd, string name, string? value) =>
        cmd.Parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value });

    private static ShardRow ReadShard(NpgsqlDataReader r) => new(
        r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetInt32(3), r.GetString(4), r.GetInt32(5), r.GetString(6), r.GetDouble(7),
        r.GetInt32(8), r.GetInt32(9), r.GetInt32(10), r.GetDouble(11), r.GetInt32(12), Str(r, 13), Str(r, 14), r.GetDateTime(15),
        Date(r, 16), Date(r, 17));

    private static string? Str(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
    private static DateTime? Date(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetDateTime(i);
}
