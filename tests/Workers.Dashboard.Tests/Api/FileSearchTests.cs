using Npgsql;
using Workers.Postgres.Sql;
using Workers.Testing;

namespace Workers.Dashboard.Tests.Api;

/// <summary>
/// Issue 12: the file-name search (/shards?file=, /api/shards?file=, re-run by filter) is a
/// case-insensitive substring match served by the trigram index of migration 010, not a scan of
/// every path (which missed the dashboard's 0.5 s at 58,760 shards under load).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class FileSearchTests(PostgresFixture pg)
{
    /// <summary>Corpus 'big': <paramref name="files"/> files whose path is <paramref name="pathSql"/> of g (a fixed
    /// expression of the test, not input), one shard of one file each (shard id = file index + 1).</summary>
    private static async Task<long> SeedAsync(TestSchema db, string pathSql, int files, params (string Name, object Value)[] args)
    {
        return await db.ScalarAsync<long>($$"""
            WITH c AS (
                INSERT INTO corpora (name, source, source_kind, root_dir, pipeline, queue, priority, shard_seconds, files, failed_files, audio_seconds, shards, created_at)
                VALUES ('big', '/data/big', 'folder', '/data/big', 'vad', 'default', 0, 1800, @n, 0, @n * 60.0, @n, now())
                RETURNING id),
            f AS (INSERT INTO files (corpus_id, file_index, path, duration_seconds)
                  SELECT c.id, g, {{pathSql}}, 60 FROM c, generate_series(0, @n - 1) g RETURNING 1),
            s AS (INSERT INTO shards (id, corpus_id, ordinal, queue, priority, state, audio_seconds, item_count, attempt, max_attempts, not_before, created_at)
                  SELECT g + 1, c.id, g, 'default', 0, 'queued', 60, 1, 0, 3, now(), now() FROM c, generate_series(0, @n - 1) g RETURNING 1),
            i AS (INSERT INTO shard_items (shard_id, ordinal, corpus_id, file_index, start_seconds, end_seconds)
                  SELECT g + 1, 0, c.id, g, 0, 60 FROM c, generate_series(0, @n - 1) g RETURNING 1)
            SELECT c.id + 0 * ((SELECT count(*) FROM f) + (SELECT count(*) FROM s) + (SELECT count(*) FROM i)) FROM c
            """, [("n", files), .. args]);
    }

    private static long[] Ids(System.Text.Json.JsonElement page) =>
        [.. page.GetProperty("shards").EnumerateArray().Select(s => s.GetProperty("id").GetInt64())];

    [Fact]
    public async Task The_file_filter_reads_matching_paths_through_the_trigram_index_not_every_path()
    {
        await using var db = await pg.CreateSchemaAsync();
        var corpus = await SeedAsync(db, "'spk' || (g / 1000) || '/utt' || lpad(g::text, 6, '0') || '.wav'", 100_000);
        // VACUUM also moves the rows from GIN's pending list into the index proper, as autovacuum does
        // soon after a large insert (autovacuum_vacuum_insert_threshold); ANALYZE alone leaves them there.
        await using (var vacuum = db.DataSource.CreateCommand("VACUUM ANALYZE files; ANALYZE")) await vacuum.ExecuteNonQueryAsync();

        // The statement the shard list runs, planned with its values as Npgsql sends them.
        await using var explain = db.DataSource.CreateCommand("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + SqlCatalog.Get("DashboardShardsPage"));
        explain.Parameters.AddWithValue("after", 0L);
        explain.Parameters.Add(new NpgsqlParameter("corpus_id", NpgsqlTypes.NpgsqlDbType.Bigint) { Value = corpus });
        foreach (var name in new[] { "state", "queue", "worker", "node" })
            explain.Parameters.Add(new NpgsqlParameter(name, NpgsqlTypes.NpgsqlDbType.Text) { Value = DBNull.Value });
        explain.Parameters.Add(new NpgsqlParameter("file", NpgsqlTypes.NpgsqlDbType.Text) { Value = "UTT0999" });
        explain.Parameters.AddWithValue("limit", 100);
        var plan = new List<string>();
        await using (var r = await explain.ExecuteReaderAsync())
            while (await r.ReadAsync()) plan.Add(r.GetString(0));
        var text = string.Join("\n", plan);
        Assert.True(text.Contains("files_path_trgm", StringComparison.Ordinal) && !text.Contains("Seq Scan on files", StringComparison.Ordinal), text);

        await using var d = await TestDashboard.StartAsync(db);
        // utt099900 .. utt099999: 100 files, each its own shard.
        var hits = Ids(await d.GetJsonAsync("/api/shards?corpus=big&file=UTT0999&limit=500"));
        Assert.Equal(Enumerable.Range(99_900, 100).Select(g => (long)g + 1), hits);
    }

    [Theory]
    [InlineData("a_b", new[] { "x/a_b.wav" })]            // _ is not "any character"
    [InlineData("50%", new[] { "x/50%.wav" })]            // % is not "anything"
    [InlineData("back\\slash", new[] { "x/back\\slash.wav" })]
    [InlineData("A_B.WAV", new[] { "x/a_b.wav" })]        // case-insensitive
    [InlineData("x/", new[] { "x/a_b.wav", "x/axb.wav", "x/50%.wav", "x/500.wav", "x/back\\slash.wav", "x/backslash.wav" })]
    public async Task The_file_filter_matches_the_text_literally_ignoring_case(string search, string[] expected)
    {
        await using var db = await pg.CreateSchemaAsync();
        string[] paths = ["x/a_b.wav", "x/axb.wav", "x/50%.wav", "x/500.wav", "x/back\\slash.wav", "x/backslash.wav"];
        await SeedAsync(db, "(@paths::text[])[g + 1]", paths.Length, ("paths", paths));
        await using var d = await TestDashboard.StartAsync(db);
        var hits = Ids(await d.GetJsonAsync($"/api/shards?file={Uri.EscapeDataString(search)}"));
        Assert.Equal(expected.Select(p => (long)Array.IndexOf(paths, p) + 1).Order(), hits);
    }
}
