using Workers.Audio;
using Workers.Audio.Synthesis;
using Workers.Pipeline.Processing;
using Workers.Pipeline.Stages;
using Workers.Pipeline.Tests.Processing;
using Workers.Pipeline.Vad;
using Workers.Stages;
using Workers.Stages.Models;
using Workers.Testing;

namespace Workers.Pipeline.Tests.Stages;

/// <summary>
/// Issue 15: the model stages run over the speech of the items' one decode (the VAD's), as each item
/// finishes; no file is opened or decoded a second time.
/// </summary>
/// <remarks>In the Silero collection: its fixture loads ONNX Runtime's environment (OrtEnvironment.Load)
/// before any session exists; this test's stage session must not race it.</remarks>
[Collection(SileroCollection.Name)]
public sealed class SegmentStageRunnerTests(SileroFixture f) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-stage-runner-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void Stages_score_the_speech_of_the_one_decode_and_equal_a_run_over_the_original_samples()
    {
        var wav = Path.Combine(_dir, "talk.wav");
        f.Speech.WriteWav(wav, 150, new Random(21));
        var flac = Path.Combine(_dir, "talk.flac");
        SpeechCorpusGenerator.Encode(wav, flac); // 16 kHz FLAC: lossless, the very samples of the WAV
        var ffmpeg = Scripts.CountingFfmpeg(_dir, out var log);
        var model = Path.Combine(_dir, "energy.onnx");
        File.WriteAllBytes(model, ReferenceModels.EnergyProjection());
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "energy" });

        // A shard of the FLAC cut in two items (the second read with a lead-in), stages fed by the VAD's decode.
        var options = new VadOptions { SubStreamSeconds = 30 };
        using var silero = new SileroVadModel(f.Session, 8);
        using var batcher = new VadBatcher(silero, options);
        var runner = new SegmentStageRunner([stage], bufferSeconds: 20); // several stage runs over the shard
        ProcessItem[] items = [new(0, flac, 0, 70.25), new(0, flac, 70.25, 150)];
        var output = new ShardProcessor(batcher, options, new AudioDecoderOptions { FfmpegPath = ffmpeg })
            .Process(items, null, CancellationToken.None, speech: (s, samples) => runner.Add(s, samples, CancellationToken.None));
        var results = runner.Finish(CancellationToken.None);

        Assert.Empty(output.Failures);
        Assert.Equal(1, Scripts.Starts(log)); // one ffmpeg decoded both items (a group of 150 s): the stages opened nothing
        Assert.True(output.Segments.Count > 10, $"only {output.Segments.Count} segments");
        Assert.Equal(output.Segments.Select(s => (s.FileIndex, s.StartSeconds)).Order(), results.Select(r => (r.FileIndex, r.StartSeconds)).Order());

        // The same segments' samples read straight from the WAV and scored apart: equal, whatever the batches.
        var expected = new SegmentStageRunner([stage], bufferSeconds: 20);
        foreach (var s in output.Segments)
        {
            using var source = AudioDecoder.Open(wav, s.StartSeconds, s.EndSeconds);
            var samples = new float[(long)Math.Round(s.EndSeconds * 16000) - (long)Math.Round(s.StartSeconds * 16000)];
            for (int filled = 0, n; filled < samples.Length && (n = source.Read(samples.AsSpan(filled))) > 0; filled += n) { }
            expected.Add(s, samples, CancellationToken.None);
        }
        var want = expected.Finish(CancellationToken.None).ToDictionary(r => (r.FileIndex, r.StartSeconds), r => Numbers(r.ResultJson));
        foreach (var r in results)
        {
            var (got, exp) = (Numbers(r.ResultJson), want[(r.FileIndex, r.StartSeconds)]);
            Assert.Equal(exp.Length, got.Length);
            for (var i = 0; i < got.Length; i++) Assert.Equal(exp[i], got[i], 1e-5 * Math.Max(1, Math.Abs(exp[i])));
        }
    }

    [Fact]
    public void A_text_output_is_stored_as_the_stage_decoded_it_a_JSON_string()
    {
        // A Paraformer-shaped model (fbank with LFR 7/6 in, logits and token_num out) whose greedy text is the stage's own.
        var model = Path.Combine(_dir, "asr.onnx");
        File.WriteAllBytes(model, ReferenceModels.GreedyAsr(560, [0, 0, 0, 0, 0.5f, 0, 0]));
        var tokens = Path.Combine(_dir, "tokens.json");
        File.WriteAllText(tokens, System.Text.Json.JsonSerializer.Serialize(new[] { "<blank>", "<s>", "</s>", "你", "好", "世", "界" }));
        using var stage = new ModelStage(model, new ModelStageOptions
        {
            Name = "asr", Model = "asr", Input = "fbank", Fbank = new FbankOptions { NumMelBins = 80, LfrM = 7, LfrN = 6 },
            Outputs = [new StageOutputOptions { Name = "logits", Keep = "text", Tokens = new StageFileOptions { File = tokens, Sha256 = Workers.Onnx.FileHashes.Sha256(tokens) } }],
        });
        var rng = new Random(4);
        var samples = new float[16000];
        for (var i = 0; i < samples.Length; i++) samples[i] = (float)(0.3 * Math.Sin(i * (0.05 + i / 400_000.0)) + 0.01 * (rng.NextDouble() - 0.5));
        var runner = new SegmentStageRunner([stage]);

        runner.Add(new FoundSegment(0, 1.0, 2.0), samples, CancellationToken.None);
        var stored = Assert.Single(runner.Finish(CancellationToken.None));

        var text = System.Text.Json.JsonDocument.Parse(stored.ResultJson).RootElement.GetProperty("logits");
        Assert.Equal(System.Text.Json.JsonValueKind.String, text.ValueKind);
        Assert.Equal(stage.Run([new StageSegment(0, samples)])[0].Text(0), text.GetString());
        Assert.False(string.IsNullOrEmpty(text.GetString()));
    }

    private static double[] Numbers(string json) =>
        [.. System.Text.Json.JsonDocument.Parse(json).RootElement.EnumerateObject().SelectMany(p => p.Value.EnumerateArray()).Select(v => v.GetDouble())];
}
