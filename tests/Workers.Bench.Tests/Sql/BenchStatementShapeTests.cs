using System.Data;
using Npgsql;
using Workers.Bench.Sql;
using Workers.Postgres.Sql;
using Workers.Testing;

namespace Workers.Bench.Tests.Sql;

/// <summary>
/// Issue 14: the benches read their statements' rows the way Workers.Postgres does, through one
/// <see cref="RowMap{T}"/> per statement (they read them by position or by ad-hoc name look-ups, and took
/// counts with ExecuteScalar). Every bench statement is prepared against a migrated database (parse and
/// describe only, every result set of a multi-statement one) and its columns (names, CLR types, order) must
/// be exactly those its mapping reads; a statement without a mapping must return nothing, unless listed in
/// <see cref="ResultIgnored"/> with the reason. So a reordered or renamed column fails here, not in a bench run.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class BenchStatementShapeTests(PostgresFixture pg)
{
    /// <summary>Statements that return a column nobody reads, and why that is right.</summary>
    private static readonly Dictionary<string, string> ResultIgnored = new()
    {
        ["StandbySynchronousSet"] = "SELECT pg_reload_conf() is run for its effect; ALTER SYSTEM cannot be described in a transaction, so it is not prepared here",
    };

    [Fact]
    public async Task Every_bench_statement_returns_exactly_the_columns_its_row_mapping_reads()
    {
        await using var db = await pg.CreateSchemaAsync();
        var maps = RowMapShapes.In(typeof(BenchSql).Assembly);
        var problems = new List<string>();
        foreach (var dup in maps.GroupBy(m => m.Statement).Where(g => g.Count() > 1))
            problems.Add($"{dup.Key}: {dup.Count()} row mappings; a statement has one.");
        foreach (var map in maps.Where(m => !BenchSql.Names.Contains(m.Statement)))
            problems.Add($"{map.Statement}: a row mapping for a statement no bench Sql/*.sql file defines.");

        var byStatement = maps.GroupBy(m => m.Statement).ToDictionary(g => g.Key, g => g.First());
        foreach (var name in BenchSql.Names.Where(n => !ResultIgnored.ContainsKey(n)).Order(StringComparer.Ordinal))
        {
            List<IReadOnlyList<(string Name, Type? Type)>> results;
            try
            {
                results = await DescribeAsync(db.DataSource, BenchSql.Get(name));
            }
            catch (PostgresException e)
            {
                problems.Add($"{name}: does not prepare against the migrated schema: {e.MessageText} (SQLSTATE {e.SqlState}).");
                continue;
            }
            var returning = results.Where(r => r.Count > 0).ToList();
            if (byStatement.TryGetValue(name, out var map))
            {
                if (returning.Count != 1) problems.Add($"{name}: has a row mapping but returns {returning.Count} result sets with columns; it must return one.");
                else problems.AddRange(RowMapShapes.Compare(map, returning[0]));
            }
            else if (returning.Count > 0)
                problems.Add($"{name}: returns {RowMapShapes.Show(returning[0])} but has no row mapping; read it through a RowMap, or list it in ResultIgnored with the reason.");
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(byStatement.Count >= 15, $"Only {byStatement.Count} bench row mappings were found by reflection: the discovery is broken.");
    }

    [Fact]
    public async Task A_reordered_or_renamed_bench_column_is_reported_against_the_mapping()
    {
        await using var db = await pg.CreateSchemaAsync();
        var check = RowMapShapes.In(typeof(BenchSql).Assembly).Single(m => m.Statement == "LoadRunCheck");
        var sql = BenchSql.Get("LoadRunCheck");
        const string first = "(SELECT count(*) FROM per_shard WHERE succeeded = 1 AND state = 'succeeded') AS succeeded_once,\n  (SELECT count(*) FROM per_shard WHERE succeeded > 1) AS doubles,";
        Assert.Contains(first, sql.ReplaceLineEndings("\n"));
        Assert.Empty(RowMapShapes.Compare(check, (await DescribeAsync(db.DataSource, sql)).Single(r => r.Count > 0)));

        var swapped = sql.ReplaceLineEndings("\n").Replace(first,
            "(SELECT count(*) FROM per_shard WHERE succeeded > 1) AS doubles,\n  (SELECT count(*) FROM per_shard WHERE succeeded = 1 AND state = 'succeeded') AS succeeded_once,");
        var reordered = RowMapShapes.Compare(check, (await DescribeAsync(db.DataSource, swapped)).Single(r => r.Count > 0));
        Assert.Contains(reordered, p => p.Contains("LoadRunCheck: column 0 is 'doubles Int64', its row mapping reads 'succeeded_once Int64'", StringComparison.Ordinal));
        var renamed = RowMapShapes.Compare(check, (await DescribeAsync(db.DataSource, sql.Replace("AS not_succeeded", "AS unfinished"))).Single(r => r.Count > 0));
        Assert.Contains(renamed, p => p.Contains("column 2 is 'unfinished Int64', its row mapping reads 'not_succeeded Int64'", StringComparison.Ordinal));
    }

    /// <summary>Parse and describe only (<see cref="CommandBehavior.SchemaOnly"/>), every statement of <paramref name="sql"/>:
    /// nothing runs, every parameter is an untyped NULL whose type the server infers.</summary>
    private static async Task<List<IReadOnlyList<(string Name, Type? Type)>>> DescribeAsync(NpgsqlDataSource db, string sql)
    {
        await using var conn = await db.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var name in RowMapShapes.ParameterNames(sql))
            cmd.Parameters.Add(new NpgsqlParameter { ParameterName = name, Value = DBNull.Value });
        var results = new List<IReadOnlyList<(string Name, Type? Type)>>();
        await using var reader = await cmd.ExecuteReaderAsync(CommandBehavior.SchemaOnly);
        do results.Add((await reader.GetColumnSchemaAsync()).Select(c => (c.ColumnName, c.DataType)).ToList());
        while (await reader.NextResultAsync());
        return results;
    }

}
