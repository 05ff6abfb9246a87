using Microsoft.ML.OnnxRuntime;
using Workers.Stages;
using Workers.Stages.Models;

namespace Workers.Stages.Tests;

/// <summary>
/// The model stage against real ONNX models the tests write (<see cref="ReferenceModels"/>), whose
/// answers are computed here independently, in double precision, from each segment's samples.
/// </summary>
public sealed class ModelStageTests : IDisposable
{
    private const int Sr = ModelStageOptions.SampleRate;
    private readonly string _dir = Directory.CreateTempSubdirectory("stage-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Save(byte[] model, string name)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, model);
        return path;
    }

    /// <summary>Segments of 0.1 to 4 s of noise around a per-segment offset (so the mean matters too).</summary>
    private static List<StageSegment> Segments(int count, int seed, double maxSeconds = 4)
    {
        var rng = new Random(seed);
        var list = new List<StageSegment>();
        for (var i = 0; i < count; i++)
        {
            var n = (int)(Sr * (0.1 + rng.NextDouble() * (maxSeconds - 0.1)));
            var offset = (float)(rng.NextDouble() - 0.5) * 0.2f;
            var s = new float[n];
            for (var j = 0; j < n; j++) s[j] = offset + (float)(rng.NextDouble() * 2 - 1) * 0.5f;
            list.Add(new StageSegment(i, s));
        }
        return list;
    }

    private static void AssertClose(float[] expected, float[] actual, double relative)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= relative * Math.Max(1, Math.Abs(expected[i])),
                $"entry {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(3)]
    [InlineData(20)]
    [InlineData(600)]
    public void Results_equal_the_independent_computation_whatever_the_batching(double batchSeconds)
    {
        var model = Save(ReferenceModels.EnergyProjection(), "energy.onnx");
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "energy", BatchSeconds = batchSeconds });
        var segments = Segments(40, seed: 1);
        var batches = new List<StagePiece[]>();
        stage.OnBatch = b => batches.Add([.. b]);

        var results = stage.Run(segments);

        Assert.Equal(segments.Count, results.Count);
        for (var i = 0; i < segments.Count; i++)
        {
            Assert.Equal(segments[i].Id, results[i].Segment);
            AssertClose(ReferenceModels.Expected(segments[i].Samples.Span), results[i].Values[0], 1e-4);
        }
        // Batches respect BatchSeconds (rows x longest row), except a single row longer than that,
        // and are sorted by length so padding stays small.
        var limit = (long)(batchSeconds * Sr);
        foreach (var b in batches)
        {
            Assert.True(b.Length == 1 || (long)b.Length * b[^1].Length <= limit, $"{b.Length} rows of up to {b[^1].Length} samples exceed {limit}");
            Assert.Equal(b.OrderBy(p => p.Length).Select(p => p.Length), b.Select(p => p.Length));
        }
        Assert.Equal(segments.Count, batches.Sum(b => b.Length));
        if (batchSeconds >= 600) Assert.Single(batches);
    }

    [Fact]
    public void A_mask_input_is_filled_like_lengths()
    {
        var model = Save(ReferenceModels.EnergyProjection(ReferenceModels.Validity.Mask), "mask.onnx");
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "m", MaskInput = "mask", BatchSeconds = 8 });
        var segments = Segments(20, seed: 2);
        var results = stage.Run(segments);
        for (var i = 0; i < segments.Count; i++) AssertClose(ReferenceModels.Expected(segments[i].Samples.Span), results[i].Values[0], 1e-4);
    }

    [Fact]
    public void Padding_never_leaks_even_after_a_longer_batch_used_the_buffer()
    {
        // Without lengths the padding is part of the sum of squares; any stale sample would show.
        var model = Save(ReferenceModels.FixedEnergy(batch: 2, samples: Sr), "fixed.onnx");
        var o = new ModelStageOptions { Name = "fixed", Model = "f", MaxSegmentSeconds = 1, CutOverlapSeconds = 0.25 };
        using var stage = new ModelStage(model, o);
        var rng = new Random(3);
        var segments = new List<StageSegment>();
        foreach (var seconds in new[] { 1.0, 0.2, 0.9, 0.35, 0.5 })
        {
            var s = new float[(int)(seconds * Sr)];
            for (var j = 0; j < s.Length; j++) s[j] = (float)(rng.NextDouble() * 2 - 1);
            segments.Add(new StageSegment(segments.Count, s));
        }
        var rows = new List<int>();
        stage.OnBatch = b => rows.Add(b.Count);

        var results = stage.Run(segments);

        Assert.All(rows, r => Assert.True(r <= 2)); // the model's fixed batch
        for (var i = 0; i < segments.Count; i++)
        {
            double sq = 0;
            foreach (var x in segments[i].Samples.Span) sq += (double)x * x;
            AssertClose([(float)sq], results[i].Values[0], 1e-4);
        }
    }

    [Fact]
    public void A_fixed_shape_model_gets_long_segments_cut_with_the_stated_overlap()
    {
        var model = Save(ReferenceModels.FixedEnergy(batch: 2, samples: Sr), "fixed.onnx");
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "fixed", Model = "f", MaxSegmentSeconds = 1, CutOverlapSeconds = 0.25 });
        var s = new float[(int)(2.5 * Sr)];
        var rng = new Random(4);
        for (var j = 0; j < s.Length; j++) s[j] = (float)(rng.NextDouble() * 2 - 1);

        var result = stage.Run([new StageSegment(7, s)])[0];

        // Pieces of 16,000 samples every 12,000 (0.25 s overlap): [0,16000) [12000,28000) [24000,40000);
        // the result is the pieces' results weighted by their lengths.
        double weighted = 0, total = 0;
        foreach (var (start, len) in new[] { (0, 16000), (12000, 16000), (24000, 16000) })
        {
            double sq = 0;
            for (var j = start; j < start + len; j++) sq += (double)s[j] * s[j];
            weighted += sq * len;
            total += len;
        }
        AssertClose([(float)(weighted / total)], result.Values[0], 1e-4);
    }

    [Fact]
    public void Long_segments_run_alone_whole_by_default()
    {
        var model = Save(ReferenceModels.EnergyProjection(), "energy.onnx");
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "e", BatchSeconds = 10, MaxSegmentSeconds = 30 });
        var segments = Segments(6, seed: 5);
        var longOne = new float[40 * Sr];
        var rng = new Random(6);
        for (var j = 0; j < longOne.Length; j++) longOne[j] = (float)(rng.NextDouble() - 0.3);
        segments.Add(new StageSegment(99, longOne));
        var batches = new List<StagePiece[]>();
        stage.OnBatch = b => batches.Add([.. b]);

        var results = stage.Run(segments);

        var alone = Assert.Single(batches, b => b.Any(p => p.Segment == 6));
        Assert.Equal(new StagePiece(6, 0, 40 * Sr), Assert.Single(alone));
        AssertClose(ReferenceModels.Expected(longOne), results[6].Values[0], 1e-4);
    }

    [Fact]
    public void Cut_segments_average_their_pieces_weighted_by_length()
    {
        var model = Save(ReferenceModels.EnergyProjection(), "energy.onnx");
        using var stage = new ModelStage(model, new ModelStageOptions
        {
            Name = "energy", Model = "e", MaxSegmentSeconds = 2, LongSegments = "cut", CutOverlapSeconds = 0.5,
        });
        var s = new float[5 * Sr];
        var rng = new Random(7);
        for (var j = 0; j < s.Length; j++) s[j] = (float)(rng.NextDouble() - 0.4);

        var result = stage.Run([new StageSegment(0, s)])[0];

        // 2 s pieces every 1.5 s: [0,2) [1.5,3.5) [3,5).
        var expected = new double[ReferenceModels.Dimensions];
        double total = 0;
        foreach (var (start, len) in new[] { (0, 2 * Sr), (24000, 2 * Sr), (3 * Sr, 2 * Sr) })
        {
            var e = ReferenceModels.Expected(s.AsSpan(start, len));
            for (var d = 0; d < e.Length; d++) expected[d] += e[d] * (double)len;
            total += len;
        }
        AssertClose([.. expected.Select(v => (float)(v / total))], result.Values[0], 1e-4);
    }

    [Fact]
    public void A_float16_model_runs_with_element_types_read_from_the_model()
    {
        var model = Save(ReferenceModels.EnergyProjection(float16: true), "fp16.onnx");
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "e16", BatchSeconds = 6 });
        Assert.Equal(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16, stage.InputType);
        var segments = Segments(12, seed: 8);

        var results = stage.Run(segments);

        for (var i = 0; i < segments.Count; i++)
        {
            // The model sees float16 samples and answers in float16 (11-bit mantissa): compare at that precision.
            var rounded = segments[i].Samples.ToArray().Select(x => (float)(Half)x).ToArray();
            AssertClose(ReferenceModels.Expected(rounded), results[i].Values[0], 4e-3);
        }
    }

    [Fact]
    public void Out_of_memory_halves_the_batch_and_retries()
    {
        // ORT's own allocation failure: the graph asks for 2^40 floats when a batch has more than 2 rows.
        var model = Save(AllocationBomb(maxRows: 2), "bomb.onnx");
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "bomb", Model = "b", BatchSeconds = 600 });
        var segments = Segments(9, seed: 9, maxSeconds: 1);
        var rows = new List<int>();
        stage.OnBatch = b => rows.Add(b.Count);

        var results = stage.Run(segments);

        Assert.True(stage.OomRetries >= 2, $"OOM retries: {stage.OomRetries}");
        Assert.True(stage.MaxRows <= 2);
        Assert.Equal(9, rows[0]); // the first try held them all
        for (var i = 0; i < segments.Count; i++)
        {
            double sq = 0;
            foreach (var x in segments[i].Samples.Span) sq += (double)x * x;
            AssertClose([(float)sq], results[i].Values[0], 1e-4);
        }
    }

    [Fact]
    public void Out_of_memory_on_a_batch_of_one_is_an_error()
    {
        var model = Save(AllocationBomb(maxRows: 0), "bomb0.onnx");
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "bomb", Model = "b" });
        // Issue 14: ORT's real allocation failure arrives typed, translated where ORT's status is read.
        var e = Assert.Throws<Workers.Onnx.OnnxOutOfMemoryException>(() => stage.Run(Segments(3, seed: 10, maxSeconds: 1)));
        Assert.IsType<OnnxRuntimeException>(e.InnerException);
        Assert.StartsWith("stage 'bomb': running model 'b': ONNX Runtime error ", e.Message);
    }

    [Fact]
    public void Filterbank_features_are_computed_per_segment_and_padded_per_batch()
    {
        var fbank = new FbankOptions();
        var model = Save(ReferenceModels.FbankMean(fbank.NumMelBins), "fbank.onnx");
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "fb", Model = "fb", Input = "fbank", BatchSeconds = 5 });
        var segments = Segments(10, seed: 11);
        var reference = new KaldiFbank(fbank);

        var results = stage.Run(segments);

        for (var i = 0; i < segments.Count; i++)
        {
            var f = reference.Compute(segments[i].Samples.Span);
            var frames = f.Length / fbank.NumMelBins;
            var mean = new float[fbank.NumMelBins];
            for (var b = 0; b < fbank.NumMelBins; b++)
            {
                double s = 0;
                for (var t = 0; t < frames; t++) s += f[t * fbank.NumMelBins + b];
                mean[b] = (float)(s / frames);
            }
            AssertClose(mean, results[i].Values[0], 1e-4);
        }
    }

    [Fact]
    public void A_model_that_does_not_fit_the_configuration_is_refused_with_what_to_change()
    {
        var model = Save(ReferenceModels.EnergyProjection(), "energy.onnx");
        var e = Assert.Throws<StageConfigurationException>(() => new ModelStage(model,
            new ModelStageOptions { Name = "energy", Model = "e", Outputs = [new StageOutputOptions { Name = "logits" }] }));
        Assert.Contains("'logits' is not a name the model has; it has 'embedding'", e.Message);

        var fb = Assert.Throws<StageConfigurationException>(() => new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "e", Input = "fbank" }));
        Assert.Contains("needs [B, frames, bins] (rank 3)", fb.Message);

        var bad = Assert.Throws<ArgumentException>(() => new ModelStage(model, new ModelStageOptions { Name = "Energy", Model = "e", BatchSeconds = 0 }));
        Assert.Contains("BatchSeconds must be > 0", bad.Message);
        Assert.Contains("Name 'Energy' must be lower-case", bad.Message);
    }

    [Fact]
    public void The_bench_model_runs_as_a_stage_with_one_row_of_features_per_segment()
    {
        var model = Save(ReferenceModels.ConvFeatures(channels: 16), "conv.onnx");
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "conv", Model = "c", BatchSeconds = 5 });
        var segments = Segments(8, seed: 12);
        var results = stage.Run(segments);
        Assert.All(results, r => Assert.Equal(16, r.Values[0].Length));
        Assert.All(results, r => Assert.All(r.Values[0], v => Assert.True(float.IsFinite(v) && v >= 0))); // a mean of ReLUs
        Assert.True(stage.BatchesRun > 1);
    }

    /// <summary>
    /// <c>waveform</c> [B, T] + <c>lengths</c> → <c>energy</c> [B, 1] (sum of squares of the valid
    /// samples), plus zero times the sum of a ConstantOfShape of 2^40 floats when B exceeds
    /// <paramref name="maxRows"/>: ONNX Runtime's allocator fails on it, as a GPU out of memory would.
    /// </summary>
    internal static byte[] AllocationBomb(int maxRows)
    {
        var g = new OnnxGraphWriter();
        var w = g.Input("waveform", OnnxDataType.Float, -1, -1);
        var lengths = g.Input("lengths", OnnxDataType.Int64, -1);
        var mask = ReferenceModels.MaskFromLengths(g, w, lengths, axis: 1);
        var energy = g.Node("ReduceSum", [g.Node("Mul", [g.Node("Mul", [w, w]), mask]), g.Ints([1L], 1)], ("keepdims", 1L));
        var rows = g.Node("Gather", [g.Node("Shape", [w]), g.Ints([0L], 1)], ("axis", 0L));
        var size = g.Node("Where", [g.Node("Greater", [rows, g.Ints([(long)maxRows], 1)]), g.Ints([1L << 40], 1), g.Ints([1L], 1)]);
        var big = g.Node("ConstantOfShape", [size], ("value", TensorAttribute.Scalar(1f)));
        var zero = g.Node("Mul", [g.Node("ReduceSum", [big], ("keepdims", 0L)), g.Floats([0f])]);
        g.NodeTo("Add", [energy, zero], ["energy"]);
        g.Output("energy", OnnxDataType.Float, -1, 1);
        return g.ToBytes();
    }
}
