using Npgsql;
using Workers.Postgres.Queue;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Dashboard;

/// <summary>
/// Pauses and resumes queues: a paused queue's shards are skipped by every claim (ShardClaim's
/// NOT EXISTS on paused_queues); shards already running finish normally. The change and its
/// audit row commit in one transaction.
/// </summary>
public sealed class QueueAdmin(NpgsqlDataSource db, TimeProvider time)
{
    /// <summary>Pauses <paramref name="queue"/>; returns 1 if it was running, 0 if it was already paused.</summary>
    public Task<int> PauseAsync(string queue, Actor actor, CancellationToken ct = default) => ChangeAsync("QueuePause", "queue.pause", queue, actor, ct);

    /// <summary>Resumes <paramref name="queue"/>; returns 1 if it was paused, 0 if it was not. Waiting workers are woken.</summary>
    public Task<int> ResumeAsync(string queue, Actor actor, CancellationToken ct = default) => ChangeAsync("QueueResume", "queue.resume", queue, actor, ct);

    private async Task<int> ChangeAsync(string statement, string action, string queue, Actor actor, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(queue) || queue.Length > 200)
            throw new ArgumentException("A queue name is 1 to 200 characters, not blank.");
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        int n;
        await using (var cmd = new NpgsqlCommand(SqlCatalog.Get(statement), conn, tx))
        {
            cmd.Parameters.AddWithValue("queue", queue);
            if (statement == "QueuePause")
            {
                cmd.Parameters.AddWithValue("actor", actor.Name);
                cmd.Parameters.Add(DbClock.Now(time));
            }
            n = await cmd.ExecuteNonQueryAsync(ct);
        }
        if (statement == "QueueResume" && n > 0) await ShardNotificationListener.NotifyAsync(conn, tx, queue, ct);
        // In the change's transaction: the audit row exists if and only if the change committed.
        await AuditLog.WriteAsync(conn, tx, new AuditRecord(actor, action, queue), n, null, time, ct);
        await tx.CommitAsync(ct);
        return n;
    }
}
