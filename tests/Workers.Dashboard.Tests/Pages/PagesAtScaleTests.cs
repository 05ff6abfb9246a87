using System.Diagnostics;
using System.Text.RegularExpressions;
using Workers.Testing;
using Xunit.Abstractions;

namespace Workers.Dashboard.Tests.Pages;

/// <summary>
/// Every page over a 27,000-hour corpus (54,000 shards, 400,000 files, half the shards dead,
/// 20,000 failed files, 10,000 audit rows) renders bounded lists. Times are written to the test
/// output as figures, not asserted.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed partial class PagesAtScaleTests(PostgresFixture pg, ITestOutputHelper output)
{
    [Fact]
    public async Task Every_page_stays_bounded_at_54000_shards_and_400000_files()
    {
        await using var db = await pg.CreateSchemaAsync();
        await using var d = await TestDashboard.StartAsync(db);
        await db.ScalarAsync<int>("""
            WITH c AS (
                INSERT INTO corpora (name, source, source_kind, root_dir, pipeline, queue, priority, shard_seconds, files, failed_files, audio_seconds, shards, created_at)
                VALUES ('big', '/data/big', 'folder', '/data/big', 'vad', 'default', 0, 1800, 400000, 0, 400000 * 243.0, 54000, now())
                RETURNING id),
            f AS (INSERT INTO files (corpus_id, file_index, path, duration_seconds)
                  SELECT c.id, g, 'spk' || (g / 1000) || '/utt' || g || '.wav', 243 FROM c, generate_series(0, 399999) g RETURNING 1),
            s AS (INSERT INTO shards (id, corpus_id, ordinal, queue, priority, state, audio_seconds, item_count, attempt, max_attempts, not_before,
                                      last_error, finished_at, created_at)
                  SELECT g + 1, c.id, g, 'default', 0, CASE WHEN g % 2 = 0 THEN 'dead' ELSE 'succeeded' END::shard_state, 1800, 8, 3, 3, now(),
                         CASE WHEN g % 2 = 0 THEN 'DecoderException: bad header' END, now(), now()
                  FROM c, generate_series(0, 53999) g RETURNING 1)
            SELECT (SELECT count(*) FROM f)::int + (SELECT count(*) FROM s)::int
            """);
        await db.ScalarAsync<int>("""
            WITH i AS (INSERT INTO shard_items (shard_id, ordinal, corpus_id, file_index, start_seconds, end_seconds)
                       SELECT (g::bigint * 54000 / 400000) + 1, g, c.id, g, 0, 243 FROM corpora c, generate_series(0, 399999) g RETURNING 1),
                 ff AS (INSERT INTO file_failures (corpus_id, file_index, shard_id, attempt, start_seconds, end_seconds, error, created_at)
                        SELECT c.id, g * 20, (g::bigint * 20 * 54000 / 400000) + 1, 1, 0, 243, 'truncated', now() FROM corpora c, generate_series(0, 19999) g RETURNING 1),
                 sg AS (INSERT INTO segments (corpus_id, shard_id, file_index, start_seconds, end_seconds)
                        SELECT c.id, 2, 8, g, g + 0.5 FROM corpora c, generate_series(0, 4999) g RETURNING 1),
                 a AS (INSERT INTO audit_log (at, actor, action, target, rows_affected)
                       SELECT now(), 'ops', 'shard.rerun', 'shard:' || g, 1 FROM generate_series(1, 10000) g RETURNING 1)
            SELECT (SELECT count(*) FROM i)::int + (SELECT count(*) FROM ff)::int + (SELECT count(*) FROM sg)::int + (SELECT count(*) FROM a)::int
            """);
        await db.ScalarAsync<int>("SELECT setval('shards_id_seq', 54000)::int");
        await using (var cmd = db.DataSource.CreateCommand("ANALYZE")) await cmd.ExecuteNonQueryAsync();

        var pages = new (string Url, string Row, int Max)[]
        {
            ("/corpora", "<tr data-shard=", 10),
            ("/shards", "<tr data-shard=", 100),
            ("/shards?state=dead&after=20000", "<tr data-shard=", 100),
            ("/failures", "<tr data-shard=", 100),
            ("/failures?corpus=big", "<tr data-shard=", 100),
            ("/failures?corpus=big&file=spk399/", "<tr data-shard=", 100),
            ("/shards/2", "<tr><td>", 8 + 100 + 1 + 1),
            ("/fleet", "<tr", 0),
            ("/audit", "<tr data-audit=", 100),
        };
        foreach (var (url, row, max) in pages)
        {
            var html = await d.GetHtmlAsync(url);
            var rows = Regex.Matches(html, Regex.Escape(row)).Count;
            Assert.InRange(rows, 0, max);
            var times = new List<double>();
            for (var i = 0; i < 5; i++)
            {
                var sw = Stopwatch.StartNew();
                await d.GetHtmlAsync(url);
                times.Add(sw.Elapsed.TotalMilliseconds);
            }
            output.WriteLine($"{url,-40} {html.Length,8} bytes {rows,4} rows  median {times.Order().ElementAt(2),7:0.0} ms");
        }
        var failures = await d.GetHtmlAsync("/failures?corpus=big");
        Assert.Equal(100, Regex.Matches(failures, "<td class=\"error\">truncated</td>").Count);
        Assert.Contains("5000 segments written, the first 100 listed", await d.GetHtmlAsync("/shards/2"));
    }
}
