using Workers.Stages;
using Workers.Stages.Models;

namespace Workers.Stages.Tests;

/// <summary>
/// Fixed buckets, what CUDA graphs need (issue 15): batches padded to a few fixed shapes, one binding and
/// one buffer set per bucket. CUDA itself cannot run here (no GPU on these machines): these tests run the
/// same code path on CPU, where the bucket binds its host buffers instead of device copies.
/// </summary>
public sealed class ModelStageBucketTests : IDisposable
{
    private const int Sr = ModelStageOptions.SampleRate;
    private static readonly List<double> Seconds = [0.5, 1, 2, 4];
    private readonly string _dir = Directory.CreateTempSubdirectory("bucket-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Save(byte[] model, string name)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, model);
        return path;
    }

    private static List<StageSegment> Segments(int count, int seed, double maxSeconds = 4)
    {
        var rng = new Random(seed);
        var list = new List<StageSegment>();
        for (var i = 0; i < count; i++)
        {
            var s = new float[(int)(Sr * (0.05 + rng.NextDouble() * (maxSeconds - 0.05)))];
            var offset = (float)(rng.NextDouble() - 0.5) * 0.2f;
            for (var j = 0; j < s.Length; j++) s[j] = offset + (float)(rng.NextDouble() * 2 - 1) * 0.5f;
            list.Add(new StageSegment(i, s));
        }
        return list;
    }

    private static void AssertClose(float[] expected, float[] actual, double relative)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= relative * Math.Max(1, Math.Abs(expected[i])), $"entry {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Theory]
    [InlineData(ReferenceModels.Validity.Lengths, true)]
    [InlineData(ReferenceModels.Validity.Mask, true)]
    [InlineData(ReferenceModels.Validity.Lengths, false)]
    public void Batches_only_ever_use_bucket_shapes_and_results_equal_the_unbucketed_run(ReferenceModels.Validity validity, bool deviceKnown)
    {
        var device = deviceKnown ? StageDevice.Cpu : null;
        var model = Save(ReferenceModels.EnergyProjection(validity), "energy.onnx");
        var mask = validity == ReferenceModels.Validity.Mask ? "mask" : null;
        using var plain = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "e", MaskInput = mask, BatchSeconds = 8 });
        using var bucketed = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "e", MaskInput = mask, BatchSeconds = 8, Buckets = Seconds }, null, device);
        var shapes = new List<StageBatchShape>();
        var batches = new List<StagePiece[]>();
        bucketed.OnShape = shapes.Add;
        bucketed.OnBatch = b => batches.Add([.. b]);
        var segments = Segments(40, seed: 1);

        var a = plain.Run(segments);
        var b = bucketed.Run(segments);

        // Rows per bucket: BatchSeconds / bucket, so every batch is 8 s of padded audio: 16 x 0.5 s, 8 x 1 s, 4 x 2 s, 2 x 4 s.
        var allowed = new HashSet<StageBatchShape> { new(16, Sr / 2, true), new(8, Sr, true), new(4, 2 * Sr, true), new(2, 4 * Sr, true) };
        Assert.All(shapes, s => Assert.Contains(s, allowed));
        Assert.True(shapes.Distinct().Count() >= 3, "the segments should spread over the buckets");
        // Each piece went to the smallest bucket that holds it.
        for (var i = 0; i < batches.Count; i++)
            Assert.All(batches[i], p => Assert.Equal(Seconds.First(s => s * Sr >= p.Length) * Sr, shapes[i].Length));
        Assert.Equal(segments.Count, batches.Sum(x => x.Length));
        for (var i = 0; i < segments.Count; i++)
        {
            AssertClose(a[i].Values[0], b[i].Values[0], 1e-5);
            AssertClose(ReferenceModels.Expected(segments[i].Samples.Span), b[i].Values[0], 1e-4);
        }
    }

    [Fact]
    public void Each_bucket_keeps_one_binding_and_its_buffers_for_every_batch()
    {
        var model = Save(ReferenceModels.EnergyProjection(), "energy.onnx");
        // Told it runs on CPU: its buckets bind their buffers once (not told, they bind them again per run; see the theory above).
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "e", BatchSeconds = 4, Buckets = Seconds }, null, StageDevice.Cpu);
        stage.WarmUp(); // builds every bucket, as the worker does before claiming
        Assert.Equal(Seconds.Count, stage.BucketBindingsCreated);
        var segments = Segments(60, seed: 2);

        var first = stage.Run(segments);
        var second = stage.Run(Segments(60, seed: 3));
        var again = stage.Run(segments);

        Assert.True(stage.BatchesRun > 3 * Seconds.Count, $"{stage.BatchesRun} batches");
        Assert.Equal(Seconds.Count, stage.BucketBindingsCreated); // no binding (and so no buffer) made per batch
        for (var i = 0; i < segments.Count; i++)
        {
            Assert.Equal(first[i].Values[0], again[i].Values[0]); // reused buffers carry nothing over: the same answer, bit for bit
            AssertClose(ReferenceModels.Expected(segments[i].Samples.Span), first[i].Values[0], 1e-4);
        }
        Assert.NotEqual(first[0].Values[0], second[0].Values[0]);
    }

    [Fact]
    public void A_piece_longer_than_the_largest_bucket_runs_alone_or_is_cut_to_it()
    {
        var model = Save(ReferenceModels.EnergyProjection(), "energy.onnx");
        var longOne = new float[6 * Sr];
        var rng = new Random(4);
        for (var j = 0; j < longOne.Length; j++) longOne[j] = (float)(rng.NextDouble() - 0.3);
        var segments = Segments(5, seed: 5);
        segments.Add(new StageSegment(5, longOne));

        using var alone = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "e", BatchSeconds = 8, Buckets = Seconds });
        var shapes = new List<StageBatchShape>();
        alone.OnShape = shapes.Add;
        var results = alone.Run(segments);
        Assert.Equal(new StageBatchShape(1, 6 * Sr, Bucketed: false), Assert.Single(shapes, s => !s.Bucketed));
        AssertClose(ReferenceModels.Expected(longOne), results[5].Values[0], 1e-4);

        using var cut = new ModelStage(model, new ModelStageOptions
        {
            Name = "energy", Model = "e", BatchSeconds = 8, Buckets = Seconds, LongSegments = "cut", CutOverlapSeconds = 0,
        });
        shapes.Clear();
        cut.OnShape = shapes.Add;
        var pieces = cut.Run(segments)[5];
        Assert.All(shapes, s => Assert.True(s.Bucketed));
        // Cut to the largest bucket: [0, 4 s) and [4 s, 6 s), averaged weighted by length.
        var e1 = ReferenceModels.Expected(longOne.AsSpan(0, 4 * Sr));
        var e2 = ReferenceModels.Expected(longOne.AsSpan(4 * Sr, 2 * Sr));
        AssertClose([.. e1.Select((v, d) => (float)((v * 4.0 + e2[d] * 2.0) / 6))], pieces.Values[0], 1e-4);
    }

    [Fact]
    public void Out_of_memory_rebuilds_the_bucket_with_half_the_rows()
    {
        var model = Save(ModelStageTests.AllocationBomb(maxRows: 2), "bomb.onnx");
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "bomb", Model = "b", BatchSeconds = 8, Buckets = [1] });
        var shapes = new List<StageBatchShape>();
        var tried = new List<int>();
        stage.OnShape = shapes.Add;
        stage.OnBatch = b => tried.Add(b.Count);
        var segments = Segments(10, seed: 6, maxSeconds: 1);

        var results = stage.Run(segments);

        Assert.Equal(8, tried[0]); // 8 s of 1 s rows: ORT's allocation failed building that bucket, and again at 4 rows
        Assert.True(stage.OomRetries >= 2, $"OOM retries: {stage.OomRetries}");
        Assert.True(stage.MaxRows <= 2);
        Assert.All(shapes, s => Assert.Equal(new StageBatchShape(2, Sr, true), s)); // every batch that ran: the rebuilt bucket
        Assert.Equal(1, stage.BucketBindingsCreated); // built at 8 and 4 rows, each failing in its first run; kept at 2

        // One piece alone in a bucket of 8 rows runs out of memory too: the bucket is what shrinks.
        using var single = new ModelStage(model, new ModelStageOptions { Name = "bomb", Model = "b", BatchSeconds = 8, Buckets = [1] });
        var one = single.Run([segments[0]]);
        Assert.True(single.MaxRows <= 2);
        AssertClose(results[0].Values[0], one[0].Values[0], 1e-6);
        for (var i = 0; i < segments.Count; i++)
        {
            double sq = 0;
            foreach (var x in segments[i].Samples.Span) sq += (double)x * x;
            AssertClose([(float)sq], results[i].Values[0], 1e-4);
        }
    }

    [Fact]
    public void With_cuda_graphs_on_a_dynamic_model_gets_default_buckets()
    {
        var model = Save(ReferenceModels.EnergyProjection(), "energy.onnx");
        // CPU here: CudaGraphs only changes the shapes (and the run's graph ids, which the CPU provider ignores).
        using var stage = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "e", MaxSegmentSeconds = 30 }, null, new StageDevice(CudaGraphs: true));
        Assert.Equal([1, 2, 4, 8, 16, 30], stage.Buckets);
        stage.WarmUp();
        var segments = Segments(12, seed: 7, maxSeconds: 20);
        var results = stage.Run(segments);
        for (var i = 0; i < segments.Count; i++) AssertClose(ReferenceModels.Expected(segments[i].Samples.Span), results[i].Values[0], 1e-4);

        using var plain = new ModelStage(model, new ModelStageOptions { Name = "energy", Model = "e" });
        Assert.Empty(plain.Buckets); // no CUDA graphs, no buckets configured: padding to each batch's longest row
        Assert.Equal([1, 2, 4, 5], ModelStageOptions.DefaultBuckets(5));

        // A fixed-shape model is one bucket of its own shape: its batches go through one binding that never moves.
        var fixedModel = Save(ReferenceModels.FixedEnergy(batch: 2, samples: Sr / 2), "fixed.onnx");
        using var fixedStage = new ModelStage(fixedModel, new ModelStageOptions { Name = "fixed", Model = "f", MaxSegmentSeconds = 1, CutOverlapSeconds = 0 },
            null, new StageDevice(CudaGraphs: true));
        Assert.Equal([0.5], fixedStage.Buckets);
        var shapes = new List<StageBatchShape>();
        fixedStage.OnShape = shapes.Add;
        var short_ = Segments(7, seed: 8, maxSeconds: 0.5);
        var energies = fixedStage.Run(short_);
        Assert.All(shapes, s => Assert.Equal(new StageBatchShape(2, Sr / 2, true), s));
        Assert.Equal(1, fixedStage.BucketBindingsCreated);
        for (var i = 0; i < short_.Count; i++)
        {
            double sq = 0;
            foreach (var x in short_[i].Samples.Span) sq += (double)x * x;
            AssertClose([(float)sq], energies[i].Values[0], 1e-4);
        }
    }

    [Fact]
    public void Buckets_are_validated_with_what_to_change()
    {
        var model = Save(ReferenceModels.EnergyProjection(), "energy.onnx");
        var e = Assert.Throws<ArgumentException>(() => new ModelStage(model,
            new ModelStageOptions { Name = "energy", Model = "e", MaxSegmentSeconds = 10, Buckets = [2, 1, -1, 20] }));
        Assert.Contains("Buckets must be strictly ascending (entry 1, 1 s, follows 2 s)", e.Message);
        Assert.Contains("Buckets:2 must be a positive number of seconds (got -1)", e.Message);
        Assert.Contains("Buckets:3 (20 s) is longer than MaxSegmentSeconds (10 s)", e.Message);

        var fixedModel = Save(ReferenceModels.FixedEnergy(batch: 2, samples: Sr), "fixed.onnx");
        var f = Assert.Throws<StageConfigurationException>(() => new ModelStage(fixedModel,
            new ModelStageOptions { Name = "fixed", Model = "f", MaxSegmentSeconds = 1, Buckets = [0.5, 1] }));
        Assert.Contains("has a fixed length (16000), so every batch already has one shape; remove Buckets", f.Message);
    }
}
