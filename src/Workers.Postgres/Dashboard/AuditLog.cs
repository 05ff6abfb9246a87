using Npgsql;
using NpgsqlTypes;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Dashboard;

/// <summary>
/// Who does what to what, for the audit trail: passed to an admin method, which writes the row in
/// the same transaction as the change. <see cref="Detail"/> is kept as given; the method may add
/// its own (e.g. why nothing changed).
/// </summary>
public sealed record AuditRecord(Actor Actor, string Action, string Target, string? Detail = null);

/// <summary>The audit trail of operator actions (table audit_log, migration 005).</summary>
public sealed class AuditLog(TimeProvider time)
{
    /// <summary>The longest detail stored; longer ones are cut, saying how much was left out.</summary>
    public const int MaxDetailLength = 4000;

    /// <summary>Records one action inside the caller's transaction, so the action and its record commit together.</summary>
    public Task<long> WriteAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, Actor actor, string action, string target, int rows,
        string? detail, CancellationToken ct) =>
        WriteAsync(conn, tx, new AuditRecord(actor, action, target), rows, detail, time, ct);

    /// <summary>
    /// Records <paramref name="record"/> inside the caller's transaction: if the change rolls back,
    /// so does its record, and a failed record rolls the change back. <paramref name="detail"/>
    /// (when given) is appended to the record's own.
    /// </summary>
    public static async Task<long> WriteAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, AuditRecord record, int rows, string? detail,
        TimeProvider time, CancellationToken ct)
    {
        var text = (record.Detail, detail) switch
        {
            (null, null) => null,
            ({ } a, null) => a,
            (null, { } b) => b,
            var (a, b) => a + "; " + b,
        };
        await using var cmd = new NpgsqlCommand(SqlCatalog.Get("AuditInsert"), conn, tx);
        cmd.Parameters.Add(DbClock.Now(time));
        cmd.Parameters.AddWithValue("actor", record.Actor.Name);
        cmd.Parameters.Add(new NpgsqlParameter("remote", NpgsqlDbType.Text) { Value = (object?)record.Actor.RemoteAddress ?? DBNull.Value });
        cmd.Parameters.AddWithValue("action", record.Action);
        cmd.Parameters.AddWithValue("target", record.Target);
        cmd.Parameters.AddWithValue("rows", rows);
        cmd.Parameters.Add(new NpgsqlParameter("detail", NpgsqlDbType.Text) { Value = (object?)Bound(text) ?? DBNull.Value });
        return await Inserted.SingleAsync(cmd, ct);
    }

    /// <summary>Cuts a detail to <see cref="MaxDetailLength"/> characters, saying so.</summary>
    public static string? Bound(string? detail) =>
        detail is null || detail.Length <= MaxDetailLength
            ? detail
            : string.Concat(detail.AsSpan(0, MaxDetailLength - 40), $" … ({detail.Length - (MaxDetailLength - 40)} more characters)");

    /// <summary>AuditInsert's mapping: the new row's id.</summary>
    private static readonly RowMap<long> Inserted = new("AuditInsert", c =>
    {
        var id = c.Column<long>("id");
        return r => r.Get(id);
    });
}
