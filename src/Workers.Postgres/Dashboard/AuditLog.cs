using Npgsql;
using NpgsqlTypes;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Dashboard;

/// <summary>The audit trail of operator actions (table audit_log, migration 005).</summary>
public sealed class AuditLog(NpgsqlDataSource db, TimeProvider time)
{
    /// <summary>Records one action, in its own transaction.</summary>
    public async Task<long> WriteAsync(Actor actor, string action, string target, int rows, string? detail = null, CancellationToken ct = default)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        return await WriteAsync(conn, null, actor, action, target, rows, detail, ct);
    }

    /// <summary>Records one action inside the caller's transaction, so the action and its record commit together.</summary>
    public async Task<long> WriteAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, Actor actor, string action, string target, int rows,
        string? detail, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(SqlCatalog.Get("AuditInsert"), conn, tx);
        cmd.Parameters.AddWithValue("now", time.GetUtcNow().UtcDateTime);
        cmd.Parameters.AddWithValue("actor", actor.Name);
        cmd.Parameters.Add(new NpgsqlParameter("remote", NpgsqlDbType.Text) { Value = (object?)actor.RemoteAddress ?? DBNull.Value });
        cmd.Parameters.AddWithValue("action", action);
        cmd.Parameters.AddWithValue("target", target);
        cmd.Parameters.AddWithValue("rows", rows);
        cmd.Parameters.Add(new NpgsqlParameter("detail", NpgsqlDbType.Text) { Value = (object?)detail ?? DBNull.Value });
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
