using System.Security.Cryptography;
using Workers.Stages;
using Workers.Stages.Models;

namespace Workers.Stages.Tests;

/// <summary>
/// A FunASR Paraformer export end to end (issue 15): fbank with LFR 7/6, the am.mvn CMVN, a model with
/// Paraformer's signature (<see cref="ReferenceModels.GreedyAsr"/>) and its logits kept as text. The
/// expected text is computed here from the samples: the filterbank, CMVN by hand from the vectors the
/// test wrote, the winning token per frame, FunASR's joining.
/// </summary>
public sealed class ParaformerStageTests : IDisposable
{
    private const int Sr = ModelStageOptions.SampleRate;
    private const int Width = 560; // 80 mel bins x LfrM 7

    /// <summary>Paraformer's vocabulary head in miniature: the specials FunASR drops, Chinese, BPE and single letters.</summary>
    private static readonly string[] Vocabulary =
        ["<blank>", "<s>", "</s>", "你", "好", "世", "界", "hel@@", "lo", "world", "a", "b", "<unk>"];

    /// <summary>Padding frames are zeros: there the bias alone decides, and token 4 ("好") wins, so a decoded padding frame shows.</summary>
    private static readonly float[] Bias = [0, 0, 0, 0, 0.5f, 0, 0, 0, 0, 0, 0, 0, 0];

    private readonly string _dir = Directory.CreateTempSubdirectory("paraformer-tests-").FullName;
    private readonly double[] _shift = new double[Width];
    private readonly double[] _scale = new double[Width];

    public ParaformerStageTests()
    {
        // Shifts near minus the typical log-mel level, scales near its inverse spread, different per feature.
        var rng = new Random(15);
        for (var d = 0; d < Width; d++)
        {
            _shift[d] = -(8 + rng.NextDouble() * 4);
            _scale[d] = 0.1 + rng.NextDouble() * 0.3;
        }
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static FbankOptions Fbank => new() { NumMelBins = 80, LfrM = 7, LfrN = 6 };

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static string Sha(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    private ModelStageOptions Options(double batchSeconds, List<double>? buckets = null)
    {
        var mvn = Write("am.mvn", KaldiCmvnTests.Mvn(_shift, _scale));
        var tokens = Write("tokens.json", System.Text.Json.JsonSerializer.Serialize(Vocabulary));
        return new ModelStageOptions
        {
            Name = "asr", Model = "paraformer", Input = "fbank", Fbank = Fbank, BatchSeconds = batchSeconds, Buckets = buckets ?? [],
            Cmvn = new StageFileOptions { File = "am.mvn", Sha256 = Sha(mvn) },
            Outputs = [new StageOutputOptions { Name = "logits", Keep = "text", Tokens = new StageFileOptions { File = "tokens.json", Sha256 = Sha(tokens) } }],
        };
    }

    private string Model(bool float16Logits = false)
    {
        var path = Path.Combine(_dir, float16Logits ? "model16.onnx" : "model.onnx");
        File.WriteAllBytes(path, ReferenceModels.GreedyAsr(Width, Bias, float16Logits));
        return path;
    }

    /// <summary>Speech-like segments: tones that change every 0.2 s over noise, 0.3 to 4 s long.</summary>
    private static List<StageSegment> Segments(int count, int seed)
    {
        var rng = new Random(seed);
        var list = new List<StageSegment>();
        for (var i = 0; i < count; i++)
        {
            var s = new float[(int)(Sr * (0.3 + rng.NextDouble() * 3.7))];
            var f = 200.0;
            for (var j = 0; j < s.Length; j++)
            {
                if (j % 3200 == 0) f = 100 + rng.NextDouble() * 600;
                s[j] = (float)(0.3 * Math.Sin(2 * Math.PI * f * j / Sr) + (rng.NextDouble() - 0.5) * 0.05);
            }
            list.Add(new StageSegment(i, s));
        }
        return list;
    }

    /// <summary>The features by hand: the filterbank, then (x + shift) * scale from the vectors written to am.mvn.</summary>
    private float[] Features(ReadOnlySpan<float> samples)
    {
        var f = new KaldiFbank(Fbank).Compute(samples);
        for (var i = 0; i < f.Length; i++) f[i] = (float)((f[i] + _shift[i % Width]) * _scale[i % Width]);
        return f;
    }

    /// <summary>The text by hand: per frame the token whose feature plus bias is highest (the first on ties), specials dropped,
    /// joined as FunASR joins; with <paramref name="float16"/> the logits rounded to half precision first, as the model casts them.</summary>
    private string ExpectedText(ReadOnlySpan<float> samples, bool float16 = false)
    {
        var f = Features(samples);
        var tokens = new List<string>();
        float Logit(int t, int v) => float16 ? (float)(Half)(f[t * Width + v] + Bias[v]) : f[t * Width + v] + Bias[v];
        for (var t = 0; t < f.Length / Width; t++)
        {
            var best = 0;
            for (var v = 1; v < Vocabulary.Length; v++)
                if (Logit(t, v) > Logit(t, best)) best = v;
            if (best is not (0 or 1 or 2 or 12)) tokens.Add(Vocabulary[best]);
        }
        return FunAsrText.Join(tokens);
    }

    [Theory]
    [InlineData(1.5)]
    [InlineData(10)]
    [InlineData(600)]
    public void Text_equals_the_independent_computation_whatever_the_batching(double batchSeconds)
    {
        using var stage = new ModelStage(Model(), Options(batchSeconds));
        var segments = Segments(24, seed: 1);
        var batches = new List<int>();
        stage.OnBatch = b => batches.Add(b.Count);

        var results = stage.Run(segments);

        for (var i = 0; i < segments.Count; i++)
        {
            var expected = ExpectedText(segments[i].Samples.Span);
            Assert.False(string.IsNullOrEmpty(expected), $"segment {i} decodes to nothing: the test would prove little");
            Assert.Equal(expected, results[i].Text(0));
            Assert.Empty(results[i].Values[0]);
        }
        if (batchSeconds >= 600) Assert.Single(batches);
        else Assert.True(batches.Count > 2);
        // The same text stored and exported: a JSON string under the output's name.
        Assert.Equal($"{{\"logits\":\"{results[0].Text(0)}\"}}", stage.FormatResult(results[0]));
    }

    [Fact]
    public void Float16_logits_and_an_int64_token_count_are_decoded_at_their_precision()
    {
        using var stage = new ModelStage(Model(float16Logits: true), Options(6));
        var segments = Segments(12, seed: 5);

        var results = stage.Run(segments);

        for (var i = 0; i < segments.Count; i++) Assert.Equal(ExpectedText(segments[i].Samples.Span, float16: true), results[i].Text(0));
    }

    [Fact]
    public void Fixed_buckets_give_the_same_text()
    {
        using var plain = new ModelStage(Model(), Options(8));
        using var bucketed = new ModelStage(Model(), Options(8, [0.5, 1, 2, 4]));
        var segments = Segments(20, seed: 2);
        var shapes = new HashSet<StageBatchShape>();
        bucketed.OnShape = s => shapes.Add(s);

        var a = plain.Run(segments);
        var b = bucketed.Run(segments);

        for (var i = 0; i < segments.Count; i++) Assert.Equal(a[i].Text(0), b[i].Text(0));
        // Feature frames of each bucket (LFR rows of 0.5, 1, 2, 4 s): no other length reached the model.
        var fbank = new KaldiFbank(Fbank);
        var lengths = new[] { 0.5, 1, 2, 4 }.Select(s => fbank.OutputFrames((int)(s * Sr))).ToHashSet();
        Assert.All(shapes, s => Assert.True(s.Bucketed && lengths.Contains(s.Length), $"shape {s}"));
    }

    [Fact]
    public void Logits_as_long_as_the_data_decides_run_in_buckets_and_are_refused_with_cuda_graphs()
    {
        // Paraformer's logits have as many frames as the batch's most tokens, not as its input: with buckets the
        // input shape is fixed but that output's shape still changes, so it cannot go into buffers bound once.
        var path = Path.Combine(_dir, "trimmed.onnx");
        File.WriteAllBytes(path, ReferenceModels.GreedyAsr(Width, Bias, trimToLongest: true));
        using var plain = new ModelStage(path, Options(8));
        using var bucketed = new ModelStage(path, Options(8, [0.5, 1, 2, 4]), null, StageDevice.Cpu);
        bucketed.WarmUp();
        var segments = Segments(20, seed: 6);

        var a = plain.Run(segments);
        var b = bucketed.Run(segments);

        for (var i = 0; i < segments.Count; i++)
        {
            Assert.Equal(ExpectedText(segments[i].Samples.Span), a[i].Text(0));
            Assert.Equal(a[i].Text(0), b[i].Text(0));
        }
        var e = Assert.Throws<StageConfigurationException>(() => new ModelStage(path, Options(8), null, new StageDevice(CudaGraphs: true)));
        Assert.Contains("output 'logits' has an axis its input's shape does not decide ('logits_length')", e.Message);
        Assert.Contains("Inference:EnableCudaGraph", e.Message);
    }

    [Fact]
    public void Cmvn_is_applied_exactly_after_lfr()
    {
        // The mean of each row's valid frames, per feature: linear, so it shows every feature's shift and scale.
        var model = Path.Combine(_dir, "mean.onnx");
        File.WriteAllBytes(model, ReferenceModels.FbankMean(Width));
        var o = Options(6);
        o.Outputs = [];
        using var stage = new ModelStage(model, o);
        var segments = Segments(10, seed: 3);

        var results = stage.Run(segments);

        for (var i = 0; i < segments.Count; i++)
        {
            var f = Features(segments[i].Samples.Span);
            var frames = f.Length / Width;
            for (var d = 0; d < Width; d++)
            {
                double sum = 0;
                for (var t = 0; t < frames; t++) sum += f[t * Width + d];
                var expected = sum / frames;
                Assert.True(Math.Abs(expected - results[i].Values[0][d]) <= 1e-4 * Math.Max(1, Math.Abs(expected)),
                    $"segment {i} feature {d}: expected {expected}, got {results[i].Values[0][d]}");
            }
        }
    }

    [Fact]
    public void Padding_never_becomes_text()
    {
        // A short segment next to a long one: its row is mostly padding, whose zero frames would decode to "好".
        using var stage = new ModelStage(Model(), Options(600));
        var segments = Segments(2, seed: 4);
        var silence = new float[Sr / 2]; // silence: CMVN makes every frame the same, and a token that is not "好" wins it
        segments.Add(new StageSegment(2, silence));
        var rows = new List<int>();
        stage.OnBatch = b => rows.Add(b.Count);

        var results = stage.Run(segments);

        Assert.Equal([3], rows);
        for (var i = 0; i < segments.Count; i++) Assert.Equal(ExpectedText(segments[i].Samples.Span), results[i].Text(0));
        Assert.DoesNotContain("好", results[2].Text(0));
    }

    [Fact]
    public void Bad_cmvn_or_token_files_stop_the_stage_when_it_is_built()
    {
        var model = Model();
        var o = Options(10);

        var missing = Options(10);
        missing.Cmvn!.File = "nope.mvn";
        Assert.Contains($"Cmvn: {Path.Combine(_dir, "nope.mvn")} does not exist", Assert.Throws<StageConfigurationException>(() => new ModelStage(model, missing)).Message);

        var wrongSha = Options(10);
        wrongSha.Cmvn!.Sha256 = new string('0', 64);
        var sha = Assert.Throws<StageConfigurationException>(() => new ModelStage(model, wrongSha));
        Assert.Contains($"has sha256 {Sha(Path.Combine(_dir, "am.mvn"))} but {new string('0', 64)} is pinned", sha.Message);

        var damaged = Write("damaged.mvn", "<Nnet>\n<AddShift> 560 560\n<LearnRateCoef> 0 [ 1 2 ]\n</Nnet>\n");
        var bad = Options(10);
        bad.Cmvn = new StageFileOptions { File = damaged, Sha256 = Sha(damaged) };
        Assert.Contains("<AddShift> declares 560 dimensions but its vector has 2 values", Assert.Throws<StageConfigurationException>(() => new ModelStage(model, bad)).Message);

        var narrow = Write("narrow.mvn", KaldiCmvnTests.Mvn(new double[80], new double[80]));
        var width = Options(10);
        width.Cmvn = new StageFileOptions { File = "narrow.mvn", Sha256 = Sha(narrow) };
        Assert.Contains("normalizes 80 features per frame but Fbank gives 560", Assert.Throws<StageConfigurationException>(() => new ModelStage(model, width)).Message);

        var shortList = Write("short.json", "[\"<blank>\", \"你\"]");
        var vocabulary = Options(10);
        vocabulary.Outputs[0].Tokens = new StageFileOptions { File = "short.json", Sha256 = Sha(shortList) };
        Assert.Contains("output 'logits' has 13 logits per frame but the token list short.json has 2 tokens",
            Assert.Throws<StageConfigurationException>(() => new ModelStage(model, vocabulary)).Message);

        var noTokens = Options(10);
        noTokens.Outputs[0].Tokens = null;
        Assert.Contains("Outputs:0:Tokens is missing", Assert.Throws<ArgumentException>(() => new ModelStage(model, noTokens)).Message);

        var waveform = Options(10);
        waveform.Input = "waveform";
        Assert.Contains("Cmvn is set but Input is 'waveform'", Assert.Throws<ArgumentException>(() => new ModelStage(model, waveform)).Message);

        var noCount = Options(10);
        noCount.Outputs[0].TokenNum = "lengths";
        Assert.Contains("TokenNum 'lengths' is not a name the model has", Assert.Throws<StageConfigurationException>(() => new ModelStage(model, noCount)).Message);

        using var ok = new ModelStage(model, o);
        ok.WarmUp();
    }
}
