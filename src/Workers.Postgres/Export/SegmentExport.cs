using System.Data;
using System.Runtime.CompilerServices;
using Npgsql;
using Workers.Core.Queue;
using Workers.Postgres.Corpora;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Export;

/// <summary>
/// Streams a corpus's speech segments (only those of succeeded shards) in file path order, then
/// start, from one consistent snapshot: the shard counts and every segment read come from the
/// same REPEATABLE READ transaction, so a shard that finishes while the export runs is either
/// wholly in it (and counted as succeeded) or wholly out of it. Rows arrive through a
/// server-side cursor in batches, so memory stays flat however many segments the corpus has.
/// </summary>
/// <remarks>
/// The snapshot is held until the export is disposed. For a plain export that is seconds to
/// minutes; with segment audio written alongside it can be hours, during which vacuum cannot
/// remove rows that died after the snapshot (mostly heartbeat updates of shards). That is the
/// price of an export that never holds half a shard.
/// </remarks>
public sealed class SegmentExport : IAsyncDisposable
{
    private enum State { Open, Reading, Done, Disposed }

    /// <summary>Rows in one FETCH (export.sql); the batch lists start at this size and never grow.</summary>
    private const int BatchCapacity = 5000;

    private readonly NpgsqlConnection _conn;
    private readonly NpgsqlTransaction _tx;
    private State _state = State.Open;

    private SegmentExport(CorpusInfo corpus, IReadOnlyDictionary<string, int> shardsByState, NpgsqlConnection conn, NpgsqlTransaction tx)
    {
        Corpus = corpus;
        ShardsByState = shardsByState;
        _conn = conn;
        _tx = tx;
    }

    public CorpusInfo Corpus { get; }

    /// <summary>Shards of the corpus by state in the export's snapshot; every state is present, zero or not.</summary>
    public IReadOnlyDictionary<string, int> ShardsByState { get; }

    public int TotalShards => ShardsByState.Values.Sum();

    /// <summary>Shards whose segments are exported.</summary>
    public int SucceededShards => ShardsByState[ShardState.Succeeded.ToDb()];

    /// <summary>Opens the export of corpus <paramref name="corpusName"/>.</summary>
    /// <exception cref="CorpusNotFoundException">No corpus has that name.</exception>
    public static async Task<SegmentExport> OpenAsync(NpgsqlDataSource db, string corpusName, CancellationToken ct = default)
    {
        // The corpus row is read first, outside the snapshot: nothing the export uses in it changes.
        var corpus = await new CorpusStatusReader(db).GetCorpusAsync(corpusName, ct);
        var conn = await db.OpenConnectionAsync(ct);
        try
        {
            var tx = await conn.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);
            await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("ExportTransactionSettings"), conn, tx))
                await cmd.ExecuteNonQueryAsync(ct);

            var byState = ShardStates.All.ToDictionary(s => s.ToDb(), _ => 0);
            await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("CorpusShardSummary"), conn, tx))
            {
                cmd.Parameters.AddWithValue("corpus_id", corpus.Id);
                foreach (var (state, shards, _, _) in await CorpusStatusReader.ShardSummary.ListAsync(cmd, ct)) byState[state] = shards;
            }

            await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("SegmentsExportDeclare"), conn, tx))
            {
                cmd.Parameters.AddWithValue("corpus_id", corpus.Id);
                await cmd.ExecuteNonQueryAsync(ct);
            }
            return new SegmentExport(corpus, byState, conn, tx);
        }
        catch
        {
            await conn.DisposeAsync(); // rolls back the transaction
            throw;
        }
    }

    /// <summary>Every exported segment, in order. Can be enumerated once.</summary>
    /// <remarks>
    /// One batch ahead: while the caller works through batch N, batch N+1 is fetched (the server
    /// runs the plan, the client decodes rows) on another thread, so on a machine with two or more
    /// cores neither side waits for the other. The two batches live in two lists used in turn;
    /// the fetch task only ever writes the list the caller is not reading, and the caller only
    /// touches a batch after awaiting the task that filled it.
    /// </remarks>
    public async IAsyncEnumerable<ExportSegment> ReadAllAsync([EnumeratorCancellation] CancellationToken ct = default)
    {
        if (_state != State.Open) ThrowNotOpen();
        _state = State.Reading;
        await using var fetch = new NpgsqlCommand(SqlCatalog.Get("SegmentsExportFetch"), _conn, _tx);
        var batches = new[] { new List<ExportSegment>(BatchCapacity), new List<ExportSegment>(BatchCapacity) };
        var last = (File: -1, Path: "");
        Task<(int File, string Path)>? pending = FetchAsync(fetch, batches[0], last, ct);
        ExportSegment? held = null;
        try
        {
            for (var b = 0; ; b ^= 1)
            {
                last = await pending;
                pending = null;
                var batch = batches[b];
                if (batch.Count == 0) break;
                pending = FetchAsync(fetch, batches[b ^ 1], last, ct);
                foreach (var segment in batch)
                {
                    // A file cut across shards: the first shard's segment ends at the cut and the next
                    // shard's starts there. One segment, as an unsplit run finds (it keeps the first shard's id).
                    if (held is { } h && segment.StartsAtCut && h.FileIndex == segment.FileIndex && Math.Abs(h.EndSeconds - segment.StartSeconds) <= 1e-6)
                    {
                        held = h with { EndSeconds = Math.Max(h.EndSeconds, segment.EndSeconds) };
                        continue;
                    }
                    if (held is { } ready) yield return ready;
                    held = segment;
                }
            }
            if (held is { } final) yield return final;
        }
        finally
        {
            // The caller stopped early (or failed): the connection is not free until the fetch ends.
            if (pending is not null)
            {
                try { await pending; }
                catch (Exception e) when (e is NpgsqlException or OperationCanceledException)
                {
                    // Nobody wants this batch any more; the caller's own exception, if any, is the one that matters.
                }
            }
        }
        _state = State.Done;
    }

    /// <summary>Runs one FETCH into <paramref name="into"/> (cleared first) on the thread pool; returns the last row's file and path.</summary>
    private static async Task<(int File, string Path)> FetchAsync(NpgsqlCommand fetch, List<ExportSegment> into, (int File, string Path) last, CancellationToken ct)
    {
        await Task.Yield(); // return to the caller at once; the fetch continues on the thread pool
        into.Clear();
        await using var r = await fetch.ExecuteReaderAsync(CommandBehavior.SequentialAccess, ct);
        var rows = Fetched.Bind(r);
        while (await r.ReadAsync(ct))
        {
            var row = rows.Read();
            var file = row.FileIndex;
            // A file's segments come together: read its path once, not once per segment.
            if (file != last.File) last = (file, row.Path);
            into.Add(row.Segment(file, last.Path));
        }
        return last;
    }

    /// <summary>
    /// The mapping of SegmentsExportFetch. Its rows are read in place (<see cref="FetchedRow"/>) rather than
    /// into a finished object, so the file's path, the same for all of a file's segments, is read once per
    /// file and not once per segment; columns in the statement's order, as sequential access needs.
    /// </summary>
    private static readonly RowMap<FetchedRow> Fetched = new("SegmentsExportFetch", c =>
    {
        var columns = new FetchColumns(c);
        return r => new FetchedRow(r, columns);
    });

    private sealed class FetchColumns(ResultColumns c)
    {
        public readonly ResultColumn<int> File = c.Column<int>("file_index");
        public readonly ResultColumn<string> Path = c.Column<string>("path");
        public readonly ResultColumn<double> Duration = c.Column<double>("duration_seconds");
        public readonly ResultColumn<double> Start = c.Column<double>("start_seconds");
        public readonly ResultColumn<double> End = c.Column<double>("end_seconds");
        public readonly ResultColumn<long> Shard = c.Column<long>("shard_id");
        public readonly ResultColumn<bool> AtCut = c.Column<bool>("at_cut");
        public readonly ResultColumn<string?> Results = c.NullableColumn<string>("results");
    }

    /// <summary>The reader's current row of SegmentsExportFetch: valid until the reader moves on. Read its
    /// columns in the statement's order (sequential access): <see cref="FileIndex"/>, then <see cref="Path"/> if wanted, then <see cref="Segment"/>.</summary>
    private readonly struct FetchedRow(Row row, FetchColumns columns)
    {
        public int FileIndex => row.Get(columns.File);

        public string Path => row.Get(columns.Path);

        public ExportSegment Segment(int file, string path) =>
            new(file, path, row.Get(columns.Duration), row.Get(columns.Start), row.Get(columns.End), row.Get(columns.Shard), row.Get(columns.AtCut))
            {
                Results = row.Get(columns.Results),
            };
    }

    public async ValueTask DisposeAsync()
    {
        if (_state == State.Disposed) return;
        _state = State.Disposed;
        // Read-only: ending the transaction releases the snapshot and the cursor either way.
        await _tx.DisposeAsync();
        await _conn.DisposeAsync();
    }

    private void ThrowNotOpen() => throw new InvalidOperationException(_state switch
    {
        State.Disposed => "The export is disposed.",
        _ => "The segments of an export can be read once.",
    });
}
