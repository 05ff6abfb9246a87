using Npgsql;
using Workers.Bench.Sql;
using Workers.Testing;

namespace Workers.Bench.Tests.Sql;

/// <summary>
/// The benches' SQL lives in embedded .sql files (issue 14), not in C# strings: every named statement
/// runs against a migrated database (in a transaction rolled back), and the columns the benches read
/// by name are the ones the statements return.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class BenchSqlTests(PostgresFixture pg)
{
    /// <summary>A value of the right type for each parameter name the statements use.</summary>
    private static readonly Dictionary<string, object> Parameters = new()
    {
        ["c"] = 0L, ["succ"] = 0, ["application_name"] = "none", ["pid"] = 0, ["nodes"] = new[] { "soak-0" },
        ["queue"] = "none", ["ids"] = new[] { 0L }, ["reference"] = 0L, ["other"] = 0L, ["name"] = "none",
        ["corpus"] = 0L, ["launched"] = new DateTime(2026, 12, 7, 0, 0, 0, DateTimeKind.Utc),
    };

    /// <summary>Statements that cannot run in a transaction (ALTER SYSTEM): checked for their text only.</summary>
    private const string OutsideTransactions = "StandbySynchronousSet";

    public static TheoryData<string> Names() => [.. BenchSql.Names.Order(StringComparer.Ordinal)];

    [Fact]
    public void Every_bench_file_has_its_statements()
    {
        Assert.Equal(
            ["BackendTerminate", "BenchStateCount", "BenchStateSeed", "BenchWorkersDelete", "ConnectionsCount", "CorpusIdByName", "LoadRunCheck", "MaxConnectionsShow",
             "PipelineRunSpans", "SegmentsCount", "ShardsCount", "ShardsOpenCount", "ShardsOpenInQueueCount", "SoakBackendPick", "SoakChangedFileCheck", "SoakClockOffsetMax",
             "SoakReport", "SoakSegmentDifferences", "SoakWorkersRunning", "StandbySynchronousCount", "StandbySynchronousSet"],
            BenchSql.Names.Order(StringComparer.Ordinal));
        Assert.Throws<KeyNotFoundException>(() => BenchSql.Get("NoSuchStatement"));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public async Task Each_statement_runs_against_the_migrated_schema(string name)
    {
        if (name == OutsideTransactions)
        {
            Assert.Contains($"synchronous_standby_names = '{SoakDatabasePair.StandbyName}'", BenchSql.Get(name));
            return;
        }
        await using var db = await pg.CreateSchemaAsync();
        await using var conn = await db.DataSource.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using var cmd = BenchSql.Command(conn, name);
        cmd.Transaction = tx;
        foreach (var (key, value) in Parameters)
            if (BenchSql.Get(name).Contains("@" + key, StringComparison.Ordinal)) cmd.Parameters.AddWithValue(key, value);
        await using (var r = await cmd.ExecuteReaderAsync())
            do { while (await r.ReadAsync()) { } } while (await r.NextResultAsync());
        await tx.RollbackAsync();
    }

    [Theory]
    [InlineData("BenchStateCount", "shards,succeeded,running,dead,segments,file_failures,sample_shard,sample_dead,mid_shard")]
    [InlineData("LoadRunCheck", "succeeded_once,doubles,not_succeeded,segments")]
    [InlineData("SoakChangedFileCheck", "unfinished,failed_seconds")]
    [InlineData("SoakReport", "shards,succeeded,dead,attempts,retries,rescues,failed_attempts,duplicate_shards,duplicate_segments,orphan_segments,lost_seconds,audio_seconds,segments,file_failures")]
    public async Task The_columns_the_benches_read_by_name_are_returned(string name, string columns)
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var conn = await db.DataSource.OpenConnectionAsync();
        await using var cmd = BenchSql.Command(conn, name);
        foreach (var (key, value) in Parameters)
            if (BenchSql.Get(name).Contains("@" + key, StringComparison.Ordinal)) cmd.Parameters.AddWithValue(key, value);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal(columns.Split(','), Enumerable.Range(0, r.FieldCount).Select(r.GetName));
    }
}
