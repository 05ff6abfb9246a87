using System.Globalization;
using System.Text.RegularExpressions;
using Workers.Testing;

namespace Workers.Bench.Tests;

/// <summary>`workers-bench pipeline` (issue 10, item 4): one run prints, per format, the whole run against its
/// limit and the decode-bound figure against decode alone and ffmpeg alone, from real workers, ffmpeg and Silero.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PipelineBenchTests(PostgresFixture pg)
{
    [Fact]
    public async Task One_run_prints_a_formats_whole_run_limit_ratio_and_decode_bound_figure_from_the_real_pipeline()
    {
        await using var db = await pg.CreateSchemaAsync();
        var env = new Dictionary<string, string?> { ["ConnectionStrings__Workers"] = db.ConnectionString, ["Models__Root"] = Models.Root };

        var r = await BenchProcess.RunAsync(env, TimeSpan.FromMinutes(5), "pipeline", "--hours", "0.5", "--formats", "wav16k,mp3", "--cpu-workers", "1", "--stage-seconds", "0", "--rounds", "2");

        Assert.True(r.ExitCode == 0, r.ToString());
        var rows = Regex.Matches(r.StdOut, @"^\s+(wav16k|mp3)\s+([\d.]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)-([\d.]+)\s+([\d.]+)\s+([\d,]+)\s+([\d.]+)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)\s+([\d,]+)\s+(\d+)\s*$", RegexOptions.Multiline);
        // One ffmpeg format and the WAV our own reader decodes: the test keeps its cores' share of a parallel CI run small.
        Assert.Equal(["wav16k", "mp3"], rows.Select(m => m.Groups[1].Value));
        foreach (Match row in rows)
        {
            double N(int group) => double.Parse(row.Groups[group].Value.Replace(",", ""), CultureInfo.InvariantCulture);
            Assert.Equal(0.5, N(2));                                  // every hour enqueued was processed
            var (whole, bare, decode, limit, ratio) = (N(3), N(4), N(5), N(6), N(7));
            Assert.InRange(limit, 0.99 * (1 / (1 / bare + 1 / decode)), 1.01 * (1 / (1 / bare + 1 / decode)));
            Assert.InRange(ratio, 0.99 * whole / limit - 0.01, 1.01 * whole / limit + 0.01);
            // Two rounds (whole runs between measurements of the limits): the row is one of them, inside their range.
            var (rounds, lowest, highest) = (N(8), N(9), N(10));
            Assert.Equal(2, rounds);
            Assert.True(lowest <= ratio && ratio <= highest, $"ratio {ratio} outside its rounds' {lowest}-{highest}: {row.Value}");
            Assert.Equal(2, Regex.Matches(r.StdErr, $@"bench: {row.Groups[1].Value}: round \d of 2: whole [\d,]+x, limit [\d,]+x, ratio ([\d.]+)").Count);
            // The whole run split on the database's clock: the worker started and claimed inside the run's wall time, and the
            // span in shards leaves out its start-up, so the audio went by faster there than over the whole run.
            var (startup, inShards, inShardsRatio) = (N(11), N(12), N(13));
            var wall = 0.5 * 3600 / whole;
            Assert.True(startup > 0 && startup < wall, $"start-up {startup} s of a {wall:0.0} s run: {row.Value}");
            Assert.True(inShards > whole, $"in shards {inShards}x should beat the whole run's {whole}x: {row.Value}");
            Assert.InRange(inShardsRatio, 0.99 * inShards / limit - 0.01, 1.01 * inShards / limit + 0.01);
            Assert.True(whole > 0 && N(14) > 0, row.Value);            // a whole run and a decode-bound run happened
            // Item 3's reference, one ffmpeg per file to /dev/null, against decode alone as the pipeline decodes: for the
            // 16 kHz WAV our reader; for MP3 one ffmpeg per 5-minute file (too long to group), read through its pipe. Both
            // columns are decode-bound over a positive rate, and ffmpeg is the slower reference for the WAV.
            Assert.True(N(15) > 0 && N(16) > 0, row.Value);
            if (row.Groups[1].Value == "wav16k") Assert.True(N(16) > N(15), $"ffmpeg decoding the WAV should be slower than our reader: {row.Value}");
            Assert.True(N(17) > 0, $"no segments: {row.Value}");      // Silero found the generated speech
            Assert.Equal(0, N(18));                                   // and no file failed
        }
        // Both rounds' corpora were removed with their runs.
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora"));
        Assert.Contains("each the mean of a measurement just before the whole run and one just after", r.StdOut);
        Assert.Contains("start-up s: from launching the workers to a worker's first claim", r.StdOut);
        Assert.Contains("the row is the round of median ratio", r.StdOut);
        Assert.Contains("one ffmpeg per group of up to 600 s of files of up to 120 s each", r.StdOut);
    }

    [Fact]
    public async Task Fewer_than_one_round_is_refused_before_anything_runs()
    {
        await using var db = await pg.CreateSchemaAsync();
        var env = new Dictionary<string, string?> { ["ConnectionStrings__Workers"] = db.ConnectionString, ["Models__Root"] = Models.Root };

        var r = await BenchProcess.RunAsync(env, TimeSpan.FromMinutes(2), "pipeline", "--hours", "0.5", "--formats", "wav16k", "--rounds", "0", "--stage-seconds", "0");

        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("--rounds must be at least 1 (is 0)", r.StdErr);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora"));
    }

    [Fact]
    public async Task A_workers_folder_without_workers_dll_is_refused_before_anything_runs()
    {
        await using var db = await pg.CreateSchemaAsync();
        var env = new Dictionary<string, string?> { ["ConnectionStrings__Workers"] = db.ConnectionString, ["Models__Root"] = Models.Root };
        var empty = Directory.CreateTempSubdirectory("no-workers-").FullName;
        try
        {
            var r = await BenchProcess.RunAsync(env, TimeSpan.FromMinutes(2), "pipeline", "--hours", "0.5", "--formats", "wav16k", "--workers", empty, "--stage-seconds", "0");

            Assert.True(r.ExitCode == 2, r.ToString());
            Assert.Contains($"--workers {empty}: there is no workers.dll there", r.StdErr);
            Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM corpora"));
        }
        finally
        {
            Directory.Delete(empty);
        }
    }
}
