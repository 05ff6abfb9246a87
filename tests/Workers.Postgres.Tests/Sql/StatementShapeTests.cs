using System.Data;
using Npgsql;
using NpgsqlTypes;
using Workers.Postgres.Sql;
using Workers.Testing;

namespace Workers.Postgres.Tests.Sql;

/// <summary>
/// Issue 14: every named statement is prepared against a migrated database, and the columns it
/// returns (names, types, order) must be exactly those its row mapping (<see cref="RowMap{T}"/>)
/// reads, so a renamed, retyped or reordered <c>RETURNING</c>/<c>SELECT</c> column fails here, not
/// in a worker. Statements without a mapping must return nothing, unless listed in
/// <see cref="ResultIgnored"/> with the reason.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class StatementShapeTests(PostgresFixture pg)
{
    /// <summary>Statements that return a column nobody reads, and why that is right.</summary>
    private static readonly Dictionary<string, string> ResultIgnored = new()
    {
        ["ShardsNotify"] = "SELECT pg_notify(...) returns void; executed for its effect",
        ["MigrationsLock"] = "SELECT pg_advisory_lock(...) returns void; executed for its effect",
        ["MigrationsUnlock"] = "pg_advisory_unlock's answer is not needed: the lock is released with the session anyway",
        ["MaintenanceUnlock"] = "pg_advisory_unlock's answer is not needed: the lock is released with the session anyway",
    };

    /// <summary>
    /// Parameters the server cannot type from an untyped NULL the way the code's values type them:
    /// <c>timestamptz - @keep</c> would resolve to timestamptz - timestamptz; the code passes a TimeSpan.
    /// </summary>
    private static readonly Dictionary<string, NpgsqlDbType> ParameterTypes = new()
    {
        ["keep"] = NpgsqlDbType.Interval,
        ["window"] = NpgsqlDbType.Interval,
    };

    /// <summary>Statements that need another one run first in the same transaction (a cursor to fetch from).</summary>
    private static readonly Dictionary<string, string> RunFirst = new() { ["SegmentsExportFetch"] = "SegmentsExportDeclare" };

    [Fact]
    public async Task Every_named_statement_returns_exactly_the_columns_its_row_mapping_reads()
    {
        await using var db = await pg.CreateSchemaAsync();
        var maps = RowMapShapes.In(typeof(SqlCatalog).Assembly);
        var problems = new List<string>();

        foreach (var dup in maps.GroupBy(m => m.Statement).Where(g => g.Count() > 1))
            problems.Add($"{dup.Key}: {dup.Count()} row mappings; a statement has one.");
        foreach (var map in maps.Where(m => !SqlCatalog.Names.Contains(m.Statement)))
            problems.Add($"{map.Statement}: a row mapping for a statement no Sql/*.sql file defines.");
        foreach (var name in ResultIgnored.Keys.Where(n => !SqlCatalog.Names.Contains(n)))
            problems.Add($"{name}: listed as result-ignored here, but no Sql/*.sql file defines it.");

        var byStatement = maps.GroupBy(m => m.Statement).ToDictionary(g => g.Key, g => g.First());
        var checkedCount = 0;
        foreach (var name in SqlCatalog.Names.Order(StringComparer.Ordinal))
        {
            var sql = SqlCatalog.Get(name);
            if (sql.StartsWith("COPY ", StringComparison.Ordinal))
            {
                problems.AddRange(await CopyProblemsAsync(db.DataSource, name, sql));
                continue;
            }
            IReadOnlyList<(string Name, Type? Type)> columns;
            try
            {
                columns = await DescribeAsync(db.DataSource, name);
            }
            catch (PostgresException e)
            {
                problems.Add($"{name}: does not prepare against the migrated schema: {e.MessageText} (SQLSTATE {e.SqlState}).");
                continue;
            }
            checkedCount++;
            if (byStatement.TryGetValue(name, out var map))
                problems.AddRange(RowMapShapes.Compare(map, columns));
            else if (columns.Count > 0 && !ResultIgnored.ContainsKey(name))
                problems.Add($"{name}: returns {RowMapShapes.Show(columns)} but has no row mapping; read it through a RowMap, or list it in ResultIgnored with the reason.");
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(byStatement.Count >= 40, $"Only {byStatement.Count} row mappings were found by reflection: the discovery is broken.");
        Assert.True(checkedCount >= 60, $"Only {checkedCount} statements were described.");
    }

    [Fact]
    public async Task A_reordered_or_renamed_column_is_reported_against_the_mapping()
    {
        await using var db = await pg.CreateSchemaAsync();
        var rescued = RowMapShapes.In(typeof(SqlCatalog).Assembly).Single(m => m.Statement == "ShardRescueExpired");
        const string returned = "SELECT id, attempt, state::text AS state FROM rescued;";
        var sql = SqlCatalog.Get("ShardRescueExpired");
        Assert.Contains(returned, sql);

        Assert.Empty(RowMapShapes.Compare(rescued, await DescribeSqlAsync(db.DataSource, sql)));
        var reordered = RowMapShapes.Compare(rescued, await DescribeSqlAsync(db.DataSource, sql.Replace(returned, "SELECT attempt, id, state::text AS state FROM rescued;")));
        Assert.Contains(reordered, p => p.Contains("column 0 is 'attempt Int32', its row mapping reads 'id Int64'", StringComparison.Ordinal));
        var renamed = RowMapShapes.Compare(rescued, await DescribeSqlAsync(db.DataSource, sql.Replace(returned, "SELECT id, attempt, state::text AS outcome FROM rescued;")));
        Assert.Contains(renamed, p => p.Contains("column 2 is 'outcome String', its row mapping reads 'state String'", StringComparison.Ordinal));
        var retyped = RowMapShapes.Compare(rescued, await DescribeSqlAsync(db.DataSource, sql.Replace(returned, "SELECT id, attempt::bigint AS attempt, state::text AS state FROM rescued;")));
        Assert.Contains(retyped, p => p.Contains("column 1 is 'attempt Int64', its row mapping reads 'attempt Int32'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_export_cursor_is_checked_through_its_fetch_and_a_reordered_column_fails()
    {
        // SegmentExport reads the cursor's rows by name now (it read them by position, and was exempt here).
        await using var db = await pg.CreateSchemaAsync();
        var fetch = RowMapShapes.In(typeof(SqlCatalog).Assembly).Single(m => m.Statement == "SegmentsExportFetch");
        var declare = SqlCatalog.Get("SegmentsExportDeclare");
        const string selected = "SELECT s.file_index, f.path, f.duration_seconds,";
        Assert.Contains(selected, declare);

        Assert.Empty(RowMapShapes.Compare(fetch, await DescribeFetchAsync(db.DataSource, declare)));
        var reordered = RowMapShapes.Compare(fetch, await DescribeFetchAsync(db.DataSource, declare.Replace(selected, "SELECT f.path, s.file_index, f.duration_seconds,")));
        Assert.Contains(reordered, p => p.Contains("SegmentsExportFetch: column 0 is 'path String', its row mapping reads 'file_index Int32'", StringComparison.Ordinal));
        var retyped = RowMapShapes.Compare(fetch, await DescribeFetchAsync(db.DataSource, declare.Replace(selected, "SELECT s.file_index::bigint AS file_index, f.path, f.duration_seconds,")));
        Assert.Contains(retyped, p => p.Contains("column 0 is 'file_index Int64', its row mapping reads 'file_index Int32'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_result_without_a_mapped_column_fails_at_bind_naming_the_statement_and_the_columns()
    {
        await using var db = await pg.CreateSchemaAsync();
        var map = new RowMap<long>("Example", c =>
        {
            var id = c.Column<long>("id");
            return r => r.Get(id);
        });
        await using var cmd = db.DataSource.CreateCommand("SELECT 1::bigint AS shard_id, 2 AS attempt");
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => map.ListAsync(cmd, CancellationToken.None));
        Assert.Contains("Statement 'Example' returned no column 'id' (it returned: shard_id, attempt)", e.Message);
    }

    [Fact]
    public async Task Columns_are_read_by_name_whatever_their_position_and_null_only_where_declared()
    {
        await using var db = await pg.CreateSchemaAsync();
        var map = new RowMap<(long Id, string? Note, double? Seconds)>("Example", c =>
        {
            var id = c.Column<long>("id");
            var note = c.NullableColumn<string>("note");
            var seconds = c.Column<double?>("seconds");
            return r => (r.Get(id), r.Get(note), r.Get(seconds));
        });
        await using (var cmd = db.DataSource.CreateCommand("SELECT NULL::float8 AS seconds, NULL::text AS note, 7::bigint AS id"))
            Assert.Equal<(long, string?, double?)>((7L, null, null), await map.SingleAsync(cmd, CancellationToken.None));
        await using (var cmd = db.DataSource.CreateCommand("SELECT 1.5::float8 AS seconds, 'x' AS note, 8::bigint AS id"))
            Assert.Equal<(long, string?, double?)>((8L, "x", 1.5), await map.SingleAsync(cmd, CancellationToken.None));
        await using (var cmd = db.DataSource.CreateCommand("SELECT NULL::bigint AS id, 'x' AS note, 1.5::float8 AS seconds"))
            await Assert.ThrowsAsync<InvalidCastException>(() => map.SingleAsync(cmd, CancellationToken.None));
    }

    private static async Task<IReadOnlyList<(string Name, Type? Type)>> DescribeAsync(NpgsqlDataSource db, string name)
    {
        await using var conn = await db.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        if (RunFirst.TryGetValue(name, out var first))
        {
            await using var setup = Command(conn, tx, SqlCatalog.Get(first));
            await setup.ExecuteNonQueryAsync();
        }
        return await DescribeAsync(conn, tx, SqlCatalog.Get(name));
    }

    /// <summary>The columns a FETCH returns from the cursor <paramref name="declare"/> opens.</summary>
    private static async Task<IReadOnlyList<(string Name, Type? Type)>> DescribeFetchAsync(NpgsqlDataSource db, string declare)
    {
        await using var conn = await db.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using (var setup = Command(conn, tx, declare))
            await setup.ExecuteNonQueryAsync();
        return await DescribeAsync(conn, tx, SqlCatalog.Get("SegmentsExportFetch"));
    }

    private static async Task<IReadOnlyList<(string Name, Type? Type)>> DescribeSqlAsync(NpgsqlDataSource db, string sql)
    {
        await using var conn = await db.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        return await DescribeAsync(conn, tx, sql);
    }

    /// <summary>Parse and describe only (<see cref="CommandBehavior.SchemaOnly"/>): nothing runs, every parameter is an untyped NULL
    /// whose type the server infers, as it does for the statement's real parameters.</summary>
    private static async Task<IReadOnlyList<(string Name, Type? Type)>> DescribeAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string sql)
    {
        await using var cmd = Command(conn, tx, sql);
        await using var reader = await cmd.ExecuteReaderAsync(CommandBehavior.SchemaOnly);
        return (await reader.GetColumnSchemaAsync()).Select(c => (c.ColumnName, c.DataType)).ToList();
    }

    private static NpgsqlCommand Command(NpgsqlConnection conn, NpgsqlTransaction tx, string sql)
    {
        var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var name in RowMapShapes.ParameterNames(sql))
            cmd.Parameters.Add(ParameterTypes.TryGetValue(name, out var type)
                ? new NpgsqlParameter(name, type) { Value = DBNull.Value }
                : new NpgsqlParameter { ParameterName = name, Value = DBNull.Value });
        return cmd;
    }

    /// <summary>A COPY's table and columns exist: the import is opened and abandoned, which rolls it back.</summary>
    private static async Task<IEnumerable<string>> CopyProblemsAsync(NpgsqlDataSource db, string name, string sql)
    {
        await using var conn = await db.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        try
        {
            await using var copy = await conn.BeginBinaryImportAsync(sql);
            return [];
        }
        catch (PostgresException e)
        {
            return [$"{name}: the COPY does not match the migrated schema: {e.MessageText} (SQLSTATE {e.SqlState})."];
        }
    }

}
