using Npgsql;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Queue;

/// <summary>
/// LISTENs on <c>workers_shards</c> over one dedicated connection, so idle workers wake as soon as
/// shards are enqueued or re-run instead of waiting for their next poll. A lost notification
/// (connection drop) costs at most one poll interval: callers always wait with a timeout.
/// </summary>
public sealed class ShardNotificationListener(NpgsqlDataSource db) : IAsyncDisposable
{
    public const string Channel = "workers_shards";

    /// <summary>
    /// Signals <see cref="Channel"/> for <paramref name="queue"/> ("*": every queue) inside <paramref name="tx"/>:
    /// delivered when it commits, so listeners wake only for a change that happened. The one way the
    /// writers (enqueue, re-run, resume, complete, release, rescue) notify.
    /// </summary>
    public static async Task NotifyAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string queue, CancellationToken ct)
    {
        await using var notify = new NpgsqlCommand(SqlCatalog.Get("ShardsNotify"), conn, tx);
        notify.Parameters.AddWithValue("queue", queue);
        await notify.ExecuteNonQueryAsync(ct);
    }
    private NpgsqlConnection? _conn;
    private volatile bool _signalled;

    /// <summary>Waits until a notification arrives or <paramref name="timeout"/> passes. True if notified.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct = default)
    {
        if (_signalled) { _signalled = false; return true; }
        try
        {
            var conn = await EnsureAsync(ct);
            var got = await conn.WaitAsync(timeout, ct);
            _signalled = false;
            return got;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException)
        {
            // Reconnect next time; the caller falls back to polling meanwhile.
            await ResetAsync();
            return false;
        }
    }

    private async Task<NpgsqlConnection> EnsureAsync(CancellationToken ct)
    {
        if (_conn is { State: System.Data.ConnectionState.Open }) return _conn;
        await ResetAsync();
        var conn = await db.OpenConnectionAsync(ct);
        conn.Notification += (_, _) => _signalled = true;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get("ShardsListen"), conn))
            await cmd.ExecuteNonQueryAsync(ct);
        _conn = conn;
        return conn;
    }

    private async Task ResetAsync()
    {
        if (_conn is null) return;
        try { await _conn.DisposeAsync(); } catch (NpgsqlException) { }
        _conn = null;
    }

    public ValueTask DisposeAsync() => new(ResetAsync());
}
