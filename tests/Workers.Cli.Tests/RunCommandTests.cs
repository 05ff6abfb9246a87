using System.Text.Json;
using Workers.Audio.Synthesis;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>`workers run` end to end: real worker processes, real ONNX Runtime, real PostgreSQL (issue 3).</summary>
[Collection(PostgresCollection.Name)]
public sealed class RunCommandTests(PostgresFixture pg) : IDisposable
{
    private readonly string _corpus = Directory.CreateTempSubdirectory("workers-run-corpus-").FullName;

    public void Dispose() => Directory.Delete(_corpus, true);

    [Fact]
    public async Task Two_cpu_workers_process_a_corpus_to_idle_with_every_shard_succeeding_once()
    {
        await Models.CatalogAsync();
        await using var db = await pg.CreateSchemaAsync();
        var gen = new SpeechCorpusGenerator(Path.Combine(_corpus, ".espeak"));
        var rng = new Random(11);
        gen.WriteWav(Path.Combine(_corpus, "long.wav"), 150, rng); // split across 1-minute shards
        for (var i = 0; i < 5; i++) gen.WriteWav(Path.Combine(_corpus, "spk", $"u{i}.wav"), 15 + 5 * i, rng);
        SpeechCorpusGenerator.Encode(Path.Combine(_corpus, "spk", "u4.wav"), Path.Combine(_corpus, "spk", "u4.flac"), 44100);
        File.Delete(Path.Combine(_corpus, "spk", "u4.wav"));
        File.WriteAllText(Path.Combine(_corpus, "spk", "broken.wav"), "RIFF but not really");
        Directory.Delete(Path.Combine(_corpus, ".espeak"), true);

        var env = WorkersProcess.Env(db.ConnectionString, Path.Combine(_corpus, ".tmp"));
        var enq = await WorkersProcess.RunAsync(env, "enqueue", _corpus, "--name", "run", "--shard-minutes", "1");
        Assert.True(enq.ExitCode == 0, enq.ToString());

        var run = await WorkersProcess.RunAsync(env, "run", "--cpu-workers", "2", "--until-idle");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("provider CPUExecutionProvider", run.StdErr);
        Assert.Contains("falling back to CPU", run.StdErr); // auto on a machine without CUDA says why

        var status = JsonDocument.Parse((await WorkersProcess.RunAsync(env, "status", "run", "--json")).StdOut).RootElement;
        var shards = status.GetProperty("shards");
        var total = await db.ScalarAsync<long>("SELECT count(*) FROM shards");
        Assert.Equal(total, shards.GetProperty("succeeded").GetInt32());
        Assert.True(status.GetProperty("segments").GetInt64() > 20);
        Assert.Equal(status.GetProperty("audio_seconds").GetDouble(), status.GetProperty("processed_seconds").GetDouble(), 3);
        Assert.Equal("spk/broken.wav", Assert.Single(status.GetProperty("failed_files").EnumerateArray()).GetProperty("file").GetString());

        Assert.Equal(total, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts WHERE outcome = 'succeeded' AND execution_provider = 'CPUExecutionProvider'"));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(DISTINCT worker) FROM shard_attempts"));
        Assert.Equal(0L, await db.ScalarAsync<long>(
            "SELECT count(*) FROM (SELECT file_index, start_seconds FROM segments GROUP BY 1, 2 HAVING count(*) > 1) d"));
        // Every segment lies inside its shard's items.
        Assert.Equal(0L, await db.ScalarAsync<long>(
            """
            SELECT count(*) FROM segments s WHERE NOT EXISTS (
              SELECT 1 FROM shard_items i WHERE i.shard_id = s.shard_id AND i.file_index = s.file_index
                AND s.start_seconds >= i.start_seconds - 1e-9 AND s.end_seconds <= i.end_seconds + 1e-9)
            """));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_corpus, ".tmp"), "*", SearchOption.AllDirectories));

        // The same corpus in 10-minute shards: long.wav is then one item, not three. Exported, its
        // segments must match the split run's: boundaries within a window or two, the same speech
        // covered. (Silero's recurrent state differs for a while after any fresh start, so a pause
        // right at the 100 ms minimum may be kept by one run and bridged by the other; the cut
        // itself adds no boundary: the exported segments are joined there.)
        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "enqueue", _corpus, "--name", "whole", "--shard-minutes", "10")).ExitCode);
        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "run", "--cpu-workers", "2", "--until-idle")).ExitCode);
        var split = await ExportLongAsync(env, "run");
        var whole = await ExportLongAsync(env, "whole");
        Assert.True(whole.Count > 10, $"only {whole.Count} segments in long.wav");
        var detail = $"whole:\n{string.Join("\n", whole)}\nsplit:\n{string.Join("\n", split)}";
        Assert.True(Math.Abs(whole.Count - split.Count) <= 2, detail);
        var matched = whole.Count(a => split.Any(b => Math.Abs(a.Start - b.Start) <= 0.064 && Math.Abs(a.End - b.End) <= 0.064));
        Assert.True(matched >= whole.Count * 0.85, $"{matched} of {whole.Count} match\n{detail}");
        double Covered(List<(double Start, double End)> x) => x.Sum(s => s.End - s.Start);
        var common = whole.Sum(a => split.Sum(b => Math.Max(0, Math.Min(a.End, b.End) - Math.Max(a.Start, b.Start))));
        Assert.True((Covered(whole) + Covered(split) - 2 * common) / Covered(whole) < 0.015, detail);
        // No segment boundary sits on a cut (50 s, 100 s) unless the unsplit run has one there too.
        foreach (var cut in new[] { 50.0, 100.0 })
            Assert.Equal(whole.Any(s => Math.Abs(s.End - cut) < 0.001), split.Any(s => Math.Abs(s.End - cut) < 0.001));
    }

    private async Task<List<(double Start, double End)>> ExportLongAsync(Dictionary<string, string?> env, string corpus)
    {
        var output = Path.Combine(_corpus, corpus + ".jsonl");
        var r = await WorkersProcess.RunAsync(env, "export", corpus, "--output", output);
        Assert.True(r.ExitCode == 0, r.ToString());
        return File.ReadLines(output).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(j => j.GetProperty("file").GetString() == "long.wav")
            .Select(j => (j.GetProperty("start").GetDouble(), j.GetProperty("end").GetDouble())).ToList();
    }
}
