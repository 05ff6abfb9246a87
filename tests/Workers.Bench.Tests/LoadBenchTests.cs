using System.Diagnostics;
using System.Text.RegularExpressions;
using Workers.Testing;

namespace Workers.Bench.Tests;

/// <summary>`workers-bench load`: many in-process workers against the real queue, exactly once (issue "Reliability", item 3).</summary>
[Collection(PostgresCollection.Name)]
public sealed class LoadBenchTests(PostgresFixture pg)
{
    [Fact]
    public async Task Fifty_workers_complete_two_thousand_shards_each_exactly_once_and_clean_up()
    {
        await using var db = await pg.CreateSchemaAsync();
        var env = new Dictionary<string, string?> { ["ConnectionStrings__Workers"] = db.ConnectionString };

        var r = await BenchProcess.RunAsync(env, TimeSpan.FromMinutes(3), "load", "--workers", "50", "--shards", "2000", "--work-ms", "2");

        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Matches(new Regex(@"^\s*shards\s+2000\s*$", RegexOptions.Multiline), r.StdOut);
        Assert.Matches(new Regex(@"^\s*completed\s+2000\s*$", RegexOptions.Multiline), r.StdOut);
        Assert.Matches(new Regex(@"^\s*succeeded exactly once\s+2000 of 2000\s*$", RegexOptions.Multiline), r.StdOut);
        Assert.Matches(new Regex(@"^\s*double executions\s+0\s*$", RegexOptions.Multiline), r.StdOut);
        Assert.Matches(new Regex(@"^\s*lease losses\s+0\s*$", RegexOptions.Multiline), r.StdOut);
        var peak = long.Parse(Regex.Match(r.StdOut, @"peak connections \(server\)\s+(\d+)").Groups[1].Value);
        Assert.InRange(peak, 2, 50 + 10 + 10); // bounded by the pool (50 + 4), the sampler and the control connection

        // The corpus is gone afterwards.
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shards"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora"));
    }

    [Fact]
    public async Task More_connections_than_the_server_allows_is_refused_before_anything_is_written()
    {
        await using var db = await pg.CreateSchemaAsync();
        var env = new Dictionary<string, string?> { ["ConnectionStrings__Workers"] = db.ConnectionString };

        var r = await BenchProcess.RunAsync(env, TimeSpan.FromMinutes(3), "load", "--workers", "200", "--connections-per-worker", "2", "--shards", "10");

        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("max_connections", r.StdErr);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora"));
    }
}
