using Npgsql;
using NpgsqlTypes;
using Workers.Core.Queue;
using Workers.Postgres.Corpora;
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
            foreach (var row in await CorpusShardCounts.ListAsync(cmd, ct))
            {
                if (!counts.TryGetValue(row.CorpusId, out var c))
                    c = (ShardStates.All.ToDictionary(s => s.ToDb(), _ => 0), 0, 0);
                c.States[row.State] = row.Shards;
                counts[row.CorpusId] = (c.States, c.Processed + row.ProcessedSeconds, c.Segments + row.Segments);
            }
        Dictionary<long, int> fileFailures;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardFileFailureCounts"), conn))
            fileFailures = (await FileFailureCounts.ListAsync(cmd, ct)).ToDictionary(f => f.CorpusId, f => f.Failures);
        var recent = await RecentByCorpusAsync(conn, ct);
        var list = new List<CorpusProgress>();
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("CorpusList"), conn))
            foreach (var corpus in await CorpusStatusReader.CorpusList.ListAsync(cmd, ct))
            {
                var id = corpus.Id;
                var c = counts.TryGetValue(id, out var x) ? x : (ShardStates.All.ToDictionary(s => s.ToDb(), _ => 0), 0, 0);
                list.Add(new CorpusProgress(id, corpus.Name, corpus.Queue, corpus.Priority, corpus.Pipeline, corpus.Files, corpus.AudioSeconds,
                    c.Processed, c.States, c.Segments, corpus.FailedFiles + fileFailures.GetValueOrDefault(id), corpus.CancelledAt is not null,
                    corpus.CreatedAt, recent.GetValueOrDefault(id)));
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
        await using var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardRecentRate"), conn);
        cmd.Parameters.Add(DbClock.Now(time));
        cmd.Parameters.AddWithValue("window", RateWindow);
        return (await RecentRate.ListAsync(cmd, ct)).ToDictionary(r => r.CorpusId, r => r.AudioSeconds);
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
        return await ShardsPage.ListAsync(cmd, ct);
    }

    /// <summary>One shard with its items, attempts (newest first), file failures and segment count; null when there is none.</summary>
    public async Task<ShardDetail?> ShardAsync(long id, CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        ShardGetRow shard;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardGet"), conn))
        {
            cmd.Parameters.AddWithValue("id", id);
            if (await ShardGet.FirstOrDefaultAsync(cmd, ct) is not { } found) return null;
            shard = found;
        }
        List<ShardItemRow> items;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardItems"), conn))
        {
            cmd.Parameters.AddWithValue("id", id);
            cmd.Parameters.AddWithValue("max", MaxListed);
            items = await ShardItems.ListAsync(cmd, ct);
        }
        List<ShardAttemptRow> attempts;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardAttempts"), conn))
        {
            cmd.Parameters.AddWithValue("id", id);
            cmd.Parameters.AddWithValue("max", MaxListed);
            attempts = await ShardAttempts.ListAsync(cmd, ct);
        }
        List<ShardFileFailureRow> failures;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardFileFailures"), conn))
        {
            cmd.Parameters.AddWithValue("id", id);
            cmd.Parameters.AddWithValue("max", MaxListed);
            failures = await ShardFileFailures.ListAsync(cmd, ct);
        }
        long segments;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardSegmentCount"), conn))
        {
            cmd.Parameters.AddWithValue("id", id);
            segments = await ShardSegmentCount.SingleAsync(cmd, ct);
        }
        return new ShardDetail(shard.Shard, shard.LeaseExpiresAt, shard.HeartbeatAt, shard.CreatedAt, shard.RootDir, items, attempts, failures, segments);
    }

    /// <summary>The first <paramref name="max"/> segments of a shard, in file and time order.</summary>
    public async Task<IReadOnlyList<ShardSegmentRow>> ShardSegmentsAsync(long id, int max, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("DashboardShardSegments"));
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("max", Math.Clamp(max, 1, MaxListed));
        return await ShardSegments.ListAsync(cmd, ct);
    }

    /// <summary>Corpora that have failed files, by name, at most <paramref name="max"/>.</summary>
    public async Task<IReadOnlyList<FailedFileCorpus>> FailedFileCorporaAsync(int max, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("DashboardFailedFileCorpora"));
        cmd.Parameters.AddWithValue("max", Math.Clamp(max, 1, MaxPageSize));
        return await FailedFileCorpora.ListAsync(cmd, ct);
    }

    /// <summary>One page of a corpus's failed files with file index above <paramref name="after"/> (keyset), in file order.</summary>
    public async Task<IReadOnlyList<FailedFileRow>> FailedFilesAsync(long corpusId, int after, int limit, CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        bool enqueueFailures;
        await using (var count = new NpgsqlCommand(SqlCatalog.Get("DashboardCorpusEnqueueFailures"), conn))
        {
            count.Parameters.AddWithValue("corpus_id", corpusId);
            enqueueFailures = await EnqueueFailures.FirstOrDefaultAsync(count, ct) is > 0;
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
        return await FailedFilesPage.ListAsync(cmd, ct);
    }

    public async Task<IReadOnlyList<PausedQueue>> PausedQueuesAsync(CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("QueuePausedList"));
        return await PausedQueues.ListAsync(cmd, ct);
    }

    public async Task<MetricsSnapshot> MetricsAsync(CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        var byState = ShardStates.All.ToDictionary(s => s.ToDb(), _ => 0L);
        double processed = 0;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardShardStateCounts"), conn))
            foreach (var (state, shards, stateProcessed) in await ShardStateCounts.ListAsync(cmd, ct))
            {
                byState[state] = shards;
                processed += stateProcessed;
            }
        long corpora;
        double enqueued;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("DashboardCorpusTotals"), conn))
            (corpora, enqueued) = await CorpusTotals.SingleAsync(cmd, ct);
        var recent = (await RecentByCorpusAsync(conn, ct)).Values.Sum();
        int paused;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("QueuePausedList"), conn))
            paused = (await PausedQueues.ListAsync(cmd, ct)).Count;
        return new MetricsSnapshot(byState, processed, corpora, enqueued, recent, paused);
    }

    public async Task<IReadOnlyList<AuditEntry>> AuditAsync(long before, int limit, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand(SqlCatalog.Get("AuditPage"));
        cmd.Parameters.AddWithValue("before", before);
        cmd.Parameters.AddWithValue("limit", Math.Clamp(limit, 1, MaxPageSize));
        return await AuditPage.ListAsync(cmd, ct);
    }

    private static void AddText(NpgsqlCommand cmd, string name, string? value) =>
        cmd.Parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value });

    // The row mappings of this class's statements (Sql/dashboard.sql), one per statement.

    private static readonly RowMap<(long CorpusId, string State, int Shards, double ProcessedSeconds, long Segments)> CorpusShardCounts =
        new("DashboardCorpusShardCounts", c =>
        {
            var corpusId = c.Column<long>("corpus_id");
            var state = c.Column<string>("state");
            var shards = c.Column<int>("shards");
            var processed = c.Column<double>("processed_seconds");
            var segments = c.Column<long>("segments");
            return r => (r.Get(corpusId), r.Get(state), r.Get(shards), r.Get(processed), r.Get(segments));
        });

    private static readonly RowMap<(long CorpusId, int Failures)> FileFailureCounts = new("DashboardFileFailureCounts", c =>
    {
        var corpusId = c.Column<long>("corpus_id");
        var failures = c.Column<int>("failures");
        return r => (r.Get(corpusId), r.Get(failures));
    });

    private static readonly RowMap<(long CorpusId, double AudioSeconds)> RecentRate = new("DashboardRecentRate", c =>
    {
        var corpusId = c.Column<long>("corpus_id");
        var audio = c.Column<double>("audio_seconds");
        return r => (r.Get(corpusId), r.Get(audio));
    });

    private static readonly RowMap<ShardRow> ShardsPage = new("DashboardShardsPage", ShardColumns);

    /// <summary>The shard row with what only the shard page shows.</summary>
    private readonly record struct ShardGetRow(ShardRow Shard, DateTime? LeaseExpiresAt, DateTime? HeartbeatAt, DateTime CreatedAt, string RootDir);

    private static readonly RowMap<ShardGetRow?> ShardGet = new("DashboardShardGet", c =>
    {
        var shard = ShardColumns(c);
        var leaseExpires = c.Column<DateTime?>("lease_expires_at");
        var heartbeat = c.Column<DateTime?>("heartbeat_at");
        var created = c.Column<DateTime>("created_at");
        var root = c.Column<string>("root_dir");
        return r => new ShardGetRow(shard(r), r.Get(leaseExpires), r.Get(heartbeat), r.Get(created), r.Get(root));
    });

    /// <summary>The shard list's columns: DashboardShardsPage returns them, DashboardShardGet starts with them.</summary>
    private static Func<Row, ShardRow> ShardColumns(ResultColumns c)
    {
        var id = c.Column<long>("id");
        var corpusId = c.Column<long>("corpus_id");
        var corpus = c.Column<string>("corpus");
        var ordinal = c.Column<int>("ordinal");
        var queue = c.Column<string>("queue");
        var priority = c.Column<int>("priority");
        var state = c.Column<string>("state");
        var audio = c.Column<double>("audio_seconds");
        var itemCount = c.Column<int>("item_count");
        var attempt = c.Column<int>("attempt");
        var maxAttempts = c.Column<int>("max_attempts");
        var processed = c.Column<double>("processed_seconds");
        var segments = c.Column<int>("segments");
        var leaseOwner = c.NullableColumn<string>("lease_owner");
        var lastError = c.NullableColumn<string>("last_error");
        var notBefore = c.Column<DateTime>("not_before");
        var startedAt = c.Column<DateTime?>("started_at");
        var finishedAt = c.Column<DateTime?>("finished_at");
        return r => new ShardRow(r.Get(id), r.Get(corpusId), r.Get(corpus), r.Get(ordinal), r.Get(queue), r.Get(priority), r.Get(state),
            r.Get(audio), r.Get(itemCount), r.Get(attempt), r.Get(maxAttempts), r.Get(processed), r.Get(segments), r.Get(leaseOwner),
            r.Get(lastError), r.Get(notBefore), r.Get(startedAt), r.Get(finishedAt));
    }

    private static readonly RowMap<ShardItemRow> ShardItems = new("DashboardShardItems", c =>
    {
        var ordinal = c.Column<int>("ordinal");
        var fileIndex = c.Column<int>("file_index");
        var path = c.Column<string>("path");
        var start = c.Column<double>("start_seconds");
        var end = c.Column<double>("end_seconds");
        return r => new ShardItemRow(r.Get(ordinal), r.Get(fileIndex), r.Get(path), r.Get(start), r.Get(end));
    });

    private static readonly RowMap<ShardAttemptRow> ShardAttempts = new("DashboardShardAttempts", c =>
    {
        var attempt = c.Column<int>("attempt");
        var worker = c.Column<string>("worker");
        var node = c.Column<string>("node");
        var gpu = c.NullableColumn<string>("gpu");
        var provider = c.NullableColumn<string>("execution_provider");
        var startedAt = c.Column<DateTime>("started_at");
        var finishedAt = c.Column<DateTime?>("finished_at");
        var outcome = c.Column<string>("outcome");
        var errorType = c.NullableColumn<string>("error_type");
        var errorMessage = c.NullableColumn<string>("error_message");
        var errorStack = c.NullableColumn<string>("error_stack");
        var logTail = c.NullableColumn<string>("log_tail");
        return r => new ShardAttemptRow(r.Get(attempt), r.Get(worker), r.Get(node), r.Get(gpu), r.Get(provider), r.Get(startedAt),
            r.Get(finishedAt), r.Get(outcome), r.Get(errorType), r.Get(errorMessage), r.Get(errorStack), r.Get(logTail));
    });

    private static readonly RowMap<ShardFileFailureRow> ShardFileFailures = new("DashboardShardFileFailures", c =>
    {
        var path = c.Column<string>("path");
        var attempt = c.Column<int>("attempt");
        var start = c.Column<double>("start_seconds");
        var end = c.Column<double>("end_seconds");
        var error = c.Column<string>("error");
        return r => new ShardFileFailureRow(r.Get(path), r.Get(attempt), r.Get(start), r.Get(end), r.Get(error));
    });

    private static readonly RowMap<long> ShardSegmentCount = new("DashboardShardSegmentCount", c =>
    {
        var segments = c.Column<long>("segments");
        return r => r.Get(segments);
    });

    private static readonly RowMap<ShardSegmentRow> ShardSegments = new("DashboardShardSegments", c =>
    {
        var fileIndex = c.Column<int>("file_index");
        var path = c.Column<string>("path");
        var start = c.Column<double>("start_seconds");
        var end = c.Column<double>("end_seconds");
        return r => new ShardSegmentRow(r.Get(fileIndex), r.Get(path), r.Get(start), r.Get(end));
    });

    private static readonly RowMap<FailedFileCorpus> FailedFileCorpora = new("DashboardFailedFileCorpora", c =>
    {
        var id = c.Column<long>("id");
        var name = c.Column<string>("name");
        var failed = c.Column<int>("failed_files");
        var enqueueFailed = c.Column<int>("enqueue_failed_files");
        return r => new FailedFileCorpus(r.Get(id), r.Get(name), r.Get(failed), r.Get(enqueueFailed));
    });

    /// <summary>The corpus's files that failed at enqueue (no row: no such corpus).</summary>
    private static readonly RowMap<int?> EnqueueFailures = new("DashboardCorpusEnqueueFailures", c =>
    {
        var failed = c.Column<int>("failed_files");
        return r => r.Get(failed);
    });

    private static readonly RowMap<FailedFileRow> FailedFilesPage = new("DashboardFailedFilesPage", c =>
    {
        var fileIndex = c.Column<int>("file_index");
        var path = c.Column<string>("path");
        var error = c.Column<string>("error");
        var shardId = c.Column<long?>("shard_id");
        var attempt = c.Column<int?>("attempt");
        return r => new FailedFileRow(r.Get(fileIndex), r.Get(path), r.Get(error), r.Get(shardId), r.Get(attempt));
    });

    private static readonly RowMap<PausedQueue> PausedQueues = new("QueuePausedList", c =>
    {
        var queue = c.Column<string>("queue");
        var pausedBy = c.Column<string>("paused_by");
        var pausedAt = c.Column<DateTime>("paused_at");
        return r => new PausedQueue(r.Get(queue), r.Get(pausedBy), r.Get(pausedAt));
    });

    private static readonly RowMap<(string State, long Shards, double ProcessedSeconds)> ShardStateCounts = new("DashboardShardStateCounts", c =>
    {
        var state = c.Column<string>("state");
        var shards = c.Column<long>("shards");
        var processed = c.Column<double>("processed_seconds");
        return r => (r.Get(state), r.Get(shards), r.Get(processed));
    });

    private static readonly RowMap<(long Corpora, double AudioSeconds)> CorpusTotals = new("DashboardCorpusTotals", c =>
    {
        var corpora = c.Column<long>("corpora");
        var audio = c.Column<double>("audio_seconds");
        return r => (r.Get(corpora), r.Get(audio));
    });

    private static readonly RowMap<AuditEntry> AuditPage = new("AuditPage", c =>
    {
        var id = c.Column<long>("id");
        var at = c.Column<DateTime>("at");
        var actor = c.Column<string>("actor");
        var remote = c.NullableColumn<string>("remote_address");
        var action = c.Column<string>("action");
        var target = c.Column<string>("target");
        var rows = c.Column<int>("rows_affected");
        var detail = c.NullableColumn<string>("detail");
        return r => new AuditEntry(r.Get(id), r.Get(at), r.Get(actor), r.Get(remote), r.Get(action), r.Get(target), r.Get(rows), r.Get(detail));
    });
}
