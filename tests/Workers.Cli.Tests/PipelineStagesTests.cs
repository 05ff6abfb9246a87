using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Workers.Audio.Synthesis;
using Workers.Stages.Models;
using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>
/// Pipelines of stages end to end (issue 15): the real executable, real Silero VAD, a real ONNX
/// model stage (written by the test, pinned in a models.json of the test's own as a local file),
/// real PostgreSQL; then the three export formats.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PipelineStagesTests(PostgresFixture pg) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-cli-stages-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A models root holding the fetched Silero models and an entry "energy-test" for a local model file.</summary>
    private async Task<string> ModelsRootAsync(string sha256Override = "")
    {
        var catalog = await Models.CatalogAsync();
        var root = Path.Combine(_dir, "models");
        Directory.CreateDirectory(root);
        foreach (var m in catalog.Models) File.Copy(m.PathUnder(Models.Root), Path.Combine(root, m.File));
        var model = Path.Combine(_dir, "my-models", "energy.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(model)!);
        File.WriteAllBytes(model, ReferenceModels.EnergyProjection());
        var sha = sha256Override is { Length: > 0 } ? sha256Override : Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(model)));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Models.Root, "models.json")))!;
        json["models"]!.AsArray().Add(new JsonObject
        {
            ["name"] = "energy-test",
            ["kind"] = "model",
            ["description"] = "RMS and mean of each segment, projected to 4 numbers (tests).",
            ["source"] = new JsonObject { ["local"] = model },
            ["file"] = "energy-test.onnx",
            ["sha256"] = sha,
        });
        File.WriteAllText(Path.Combine(root, "models.json"), json.ToJsonString());
        return root;
    }

    private static (string, string?)[] Pipelines(string modelsRoot) =>
    [
        ("Models__Root", modelsRoot),
        ("Pipelines__strict__Threshold", "0.85"),
        ("Pipelines__strict__MinSpeechMs", "2000"),
        ("Pipelines__energy__Stages__0__Name", "energy"),
        ("Pipelines__energy__Stages__0__Model", "energy-test"),
        ("Pipelines__energy__Stages__0__BatchSeconds", "20"),
    ];

    [Fact]
    public async Task Status_says_which_queued_shards_no_running_worker_can_take()
    {
        await using var db = await pg.CreateSchemaAsync();
        var corpus = Path.Combine(_dir, "waiting");
        new SpeechCorpusGenerator(Path.Combine(_dir, ".espeak")).WriteWav(Path.Combine(corpus, "u.wav"), 20, new Random(3));
        var env = WorkersProcess.Env(db.ConnectionString, Path.Combine(_dir, "tmp"), ("Pipelines__strict__Threshold", "0.85"));
        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "strict-one", "--pipeline", "strict")).ExitCode);
        Assert.Equal(0, (await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "plain")).ExitCode);
        // A running worker that serves only vad: the strict corpus's shard waits for a worker that loads strict.
        await new Workers.Postgres.Fleet.WorkerRegistry(db.DataSource, TimeProvider.System).RegisterAsync(new Workers.Postgres.Fleet.WorkerRegistration(
            "n/1/0", "n", 1, 0, null, null, null, "CPUExecutionProvider", 1, "0", ["default"]) { Pipelines = ["vad"] });

        var all = await WorkersProcess.RunAsync(env, "status", "--json");
        Assert.True(all.ExitCode == 0, all.ToString());
        using (var doc = JsonDocument.Parse(all.StdOut))
        {
            var u = Assert.Single(doc.RootElement.GetProperty("unservable").EnumerateArray());
            Assert.Equal("strict", u.GetProperty("pipeline").GetString());
            Assert.Equal(1, u.GetProperty("shards").GetInt32());
            var byName = doc.RootElement.GetProperty("corpora").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!);
            Assert.True(byName["strict-one"].GetProperty("pipeline_without_worker").GetBoolean());
            Assert.False(byName["plain"].GetProperty("pipeline_without_worker").GetBoolean());
        }
        var one = await WorkersProcess.RunAsync(env, "status", "strict-one", "--json");
        using (var doc = JsonDocument.Parse(one.StdOut))
            Assert.True(doc.RootElement.GetProperty("pipeline_without_worker").GetBoolean());
        var text = await WorkersProcess.RunAsync(env, "status");
        Assert.Contains("waiting: 1 queued shard(s)", text.StdOut);
        Assert.Contains("of pipeline 'strict': no running worker serves it", text.StdOut);
        Assert.DoesNotContain("waiting:", (await WorkersProcess.RunAsync(env, "status", "plain")).StdOut);
    }

    [Fact]
    public async Task Each_corpus_runs_its_own_pipeline_and_stage_results_reach_every_export_format()
    {
        await using var db = await pg.CreateSchemaAsync();
        var corpus = Path.Combine(_dir, "corpus");
        var gen = new SpeechCorpusGenerator(Path.Combine(_dir, ".espeak"));
        var rng = new Random(5);
        for (var i = 0; i < 3; i++) gen.WriteWav(Path.Combine(corpus, $"u{i}.wav"), 40, rng, minGap: 0.3, maxGap: 1.5);
        var modelsRoot = await ModelsRootAsync();
        var env = WorkersProcess.Env(db.ConnectionString, Path.Combine(_dir, "tmp"), Pipelines(modelsRoot));

        var fetch = await WorkersProcess.RunAsync(env, "models", "fetch");
        Assert.True(fetch.ExitCode == 0, fetch.ToString());
        Assert.Contains("energy-test: copied", fetch.StdOut + fetch.StdErr);
        foreach (var p in new[] { "vad", "strict", "energy" })
        {
            var enq = await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", p, "--pipeline", p);
            Assert.True(enq.ExitCode == 0, enq.ToString());
        }
        var run = await WorkersProcess.RunAsync(env, WorkersProcess.RunOneCpuWorkerUntilIdle);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("stage energy ready", run.StdErr);

        // strict (threshold 0.85, min speech 2 s) is not the default pipeline any more.
        var vad = await db.ScalarAsync<long>("SELECT count(*) FROM segments s JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'vad'");
        Assert.True(vad > 10, $"{vad} segments");
        Assert.Equal(0L, await db.ScalarAsync<long>(
            "SELECT count(*) FROM segments s JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'strict' AND s.end_seconds - s.start_seconds < 2 - 1e-6"));
        Assert.True(await db.ScalarAsync<long>(
            "SELECT count(*) FROM segments s JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'vad' AND s.end_seconds - s.start_seconds < 2") > 0);
        // energy has vad's settings, so the same segments, and one result each.
        Assert.Equal(vad, await db.ScalarAsync<long>("SELECT count(*) FROM segments s JOIN corpora c ON c.id = s.corpus_id WHERE c.name = 'energy'"));
        Assert.Equal(vad, await db.ScalarAsync<long>("SELECT count(*) FROM segment_results WHERE stage = 'energy'"));

        // JSONL: every line of the energy corpus carries the stage's field; the vad corpus's lines do not.
        var jsonl = await WorkersProcess.RunAsync(env, "export", "energy");
        Assert.True(jsonl.ExitCode == 0, jsonl.ToString());
        var lines = jsonl.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(vad, lines.Count);
        Assert.All(lines, l => Assert.Equal(ReferenceModels.Dimensions, l.GetProperty("energy").GetProperty("embedding").GetArrayLength()));
        var plain = await WorkersProcess.RunAsync(env, "export", "vad");
        Assert.DoesNotContain("\"energy\"", plain.StdOut);

        // NeMo: audio_filepath (absolute), offset, duration, and the stage.
        var nemoPath = Path.Combine(_dir, "nemo.json");
        var nemo = await WorkersProcess.RunAsync(env, "export", "energy", "--format", "nemo", "--output", nemoPath);
        Assert.True(nemo.ExitCode == 0, nemo.ToString());
        var nemoLines = File.ReadAllLines(nemoPath).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(vad, nemoLines.Count);
        for (var i = 0; i < lines.Count; i++)
        {
            var n = nemoLines[i];
            Assert.Equal(["audio_filepath", "offset", "duration", "energy"], n.EnumerateObject().Select(p => p.Name));
            Assert.Equal(Path.Combine(corpus, lines[i].GetProperty("file").GetString()!), n.GetProperty("audio_filepath").GetString());
            Assert.Equal(lines[i].GetProperty("start").GetDouble(), n.GetProperty("offset").GetDouble());
            Assert.Equal(lines[i].GetProperty("duration").GetDouble(), n.GetProperty("duration").GetDouble());
            Assert.Equal(lines[i].GetProperty("energy").GetRawText(), n.GetProperty("energy").GetRawText());
        }

        // Lhotse: recordings and supervisions, gzip JSONL, with the files' own format.
        var lhotseDir = Directory.CreateDirectory(Path.Combine(_dir, "lhotse")).FullName;
        var lhotse = await WorkersProcess.RunAsync(env, "export", "energy", "--format", "lhotse", "--output", lhotseDir);
        Assert.True(lhotse.ExitCode == 0, lhotse.ToString());
        var recordings = GunzipLines(Path.Combine(lhotseDir, "recordings.jsonl.gz"));
        var supervisions = GunzipLines(Path.Combine(lhotseDir, "supervisions.jsonl.gz"));
        Assert.Equal(3, recordings.Count);
        foreach (var r in recordings)
        {
            Assert.Equal(["id", "sources", "sampling_rate", "num_samples", "duration", "channel_ids"], r.EnumerateObject().Select(p => p.Name));
            var source = Assert.Single(r.GetProperty("sources").EnumerateArray());
            Assert.Equal("file", source.GetProperty("type").GetString());
            Assert.Equal([0], source.GetProperty("channels").EnumerateArray().Select(c => c.GetInt32()));
            Assert.Equal(Path.Combine(corpus, r.GetProperty("id").GetString()!), source.GetProperty("source").GetString());
            Assert.Equal(16000, r.GetProperty("sampling_rate").GetInt32());
            Assert.Equal(40 * 16000, r.GetProperty("num_samples").GetInt64());
            Assert.Equal(40.0, r.GetProperty("duration").GetDouble());
        }
        Assert.Equal(vad, supervisions.Count);
        for (var i = 0; i < lines.Count; i++)
        {
            var s = supervisions[i];
            Assert.Equal(["id", "recording_id", "start", "duration", "channel", "custom"], s.EnumerateObject().Select(p => p.Name));
            Assert.Equal(lines[i].GetProperty("file").GetString(), s.GetProperty("recording_id").GetString());
            Assert.Equal(lines[i].GetProperty("start").GetDouble(), s.GetProperty("start").GetDouble());
            Assert.Equal(lines[i].GetProperty("duration").GetDouble(), s.GetProperty("duration").GetDouble());
            Assert.Equal(0, s.GetProperty("channel").GetInt32());
            Assert.Equal(lines[i].GetProperty("shard").GetInt64(), s.GetProperty("custom").GetProperty("shard").GetInt64());
            Assert.Equal(lines[i].GetProperty("energy").GetRawText(), s.GetProperty("custom").GetProperty("energy").GetRawText());
        }
        Assert.Equal(supervisions.Count, supervisions.Select(s => s.GetProperty("id").GetString()).Distinct().Count());
    }

    [Fact]
    public async Task A_stage_model_with_a_wrong_sha256_stops_the_worker_at_start_up_before_it_claims()
    {
        await using var db = await pg.CreateSchemaAsync();
        var corpus = Path.Combine(_dir, "corpus");
        Directory.CreateDirectory(corpus);
        Workers.Audio.Pcm16Wav.Write(Path.Combine(corpus, "a.wav"), 16000, 16000 * 3, i => (short)(3000 * Math.Sin(i * 0.05)));
        var modelsRoot = await ModelsRootAsync(sha256Override: new string('0', 64));
        // The file is in place, but it is not the one pinned.
        File.WriteAllBytes(Path.Combine(modelsRoot, "energy-test.onnx"), ReferenceModels.EnergyProjection());
        var env = WorkersProcess.Env(db.ConnectionString, Path.Combine(_dir, "tmp"), Pipelines(modelsRoot));
        var enq = await WorkersProcess.RunAsync(env, "enqueue", corpus, "--name", "e", "--pipeline", "energy");
        Assert.True(enq.ExitCode == 0, enq.ToString());

        var worker = await WorkersProcess.RunAsync(env, "worker", "--until-idle");

        Assert.NotEqual(0, worker.ExitCode);
        Assert.Contains("energy-test", worker.StdErr);
        Assert.Contains("workers models fetch", worker.StdErr);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM shard_attempts"));

        // The fetch refuses the local file too, naming both sums.
        var fetch = await WorkersProcess.RunAsync(env, "models", "fetch");
        Assert.NotEqual(0, fetch.ExitCode);
        Assert.Contains("but models.json pins 0000", fetch.StdErr);
    }

    private static List<JsonElement> GunzipLines(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
    }
}
