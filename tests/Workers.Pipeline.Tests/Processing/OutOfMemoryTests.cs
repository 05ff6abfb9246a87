using Workers.Onnx;
using Workers.Pipeline.Processing;
using Workers.Pipeline.Tests.Vad;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Processing;

/// <summary>Inference out of memory: the batch is halved and retried; only a batch of one failing fails the shard (DESIGN.md, "Failure levels").</summary>
public sealed class OutOfMemoryTests : IDisposable
{
    // The split is pinned: by default it follows the batch capacity (VadOptions.SplitRows), and these runs compare capacities.
    private static readonly VadOptions Options = new() { SplitRows = 4 };
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-oom-tests-").FullName;
    private readonly List<ProcessItem> _items = [];

    public OutOfMemoryTests()
    {
        // Many short files (more streams than any batch), one long file split into sub-streams,
        // and a range starting inside a file (read with a lead-in).
        for (var i = 0; i < 14; i++)
        {
            var seconds = 6 + 3 * i;
            _items.Add(new ProcessItem(i, WriteWav($"short-{i}.wav", seconds, new Random(10 + i)), 0, seconds));
        }
        var longPath = WriteWav("long.wav", 150, new Random(99));
        _items.Add(new ProcessItem(14, longPath, 0, 150));
        var midPath = WriteWav("mid.wav", 40, new Random(77));
        _items.Add(new ProcessItem(15, midPath, 12.5, 40));
    }

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A CUDA out-of-memory as our ORT binding reports it (translated from ORT's status).</summary>
    private static OnnxRuntimeException CudaOom() => OnnxRuntimeException.FromStatus(
        OrtErrorCode.Fail,
        "Non-zero status code returned while running Conv node. Name:'/stft/Conv' Status Message: CUDA failure 2: out of memory ; GPU=0 ; hostname=n1 ; expr=cudaMalloc((void**)&p, size);",
        "Silero VAD inference");

    private ShardOutput Run(IVadModel model, out VadBatcher batcher)
    {
        batcher = new VadBatcher(model, Options);
        using (batcher)
            return new ShardProcessor(batcher, Options).Process(_items, null, CancellationToken.None);
    }

    private ShardOutput Reference()
    {
        var output = Run(new FakeVadModel(4, memoryWindows: 3), out _);
        Assert.Empty(output.Failures);
        Assert.True(output.Segments.Count > 20, $"the test audio gave only {output.Segments.Count} segments");
        Assert.Equal(0, output.OomRetries);
        Assert.Equal(4, output.FinalRunSize);
        return output;
    }

    [Fact]
    public void A_batch_too_large_is_halved_and_gives_the_segments_of_a_run_that_fit_from_the_start()
    {
        var reference = Reference();
        var model = new ThrowingModel(16, n => n > 4 ? CudaOom() : null);

        var output = Run(model, out var batcher);

        Assert.Empty(output.Failures);
        Assert.Equal(reference.Segments, output.Segments);
        Assert.Equal(reference.AudioSeconds, output.AudioSeconds);
        Assert.Equal(2, output.OomRetries); // 16 -> 8 -> 4
        Assert.Equal(4, output.FinalRunSize);
        Assert.Equal(4, batcher.MaxRunSize);
        Assert.Equal(4, model.LargestScored);
        // The reduced size is kept: after the halvings no call larger than 4 was tried again.
        Assert.Equal([16, 8], model.Failed);
    }

    [Fact]
    public void A_managed_out_of_memory_is_halved_too()
    {
        var reference = Reference();
        var model = new ThrowingModel(12, n => n > 3 ? new OutOfMemoryException($"batch of {n}") : null);

        var output = Run(model, out _);

        Assert.Empty(output.Failures);
        Assert.Equal(reference.Segments, output.Segments);
        Assert.Equal(2, output.OomRetries); // 12 -> 6 -> 3
        Assert.Equal(3, output.FinalRunSize);
    }

    [Fact]
    public void An_out_of_memory_that_passes_is_retried_at_the_smaller_size_and_nothing_is_lost()
    {
        var reference = Reference();
        var calls = 0;
        // Fails once, in the middle of the shard, whatever the size.
        var model = new ThrowingModel(4, _ => ++calls == 300 ? CudaOom() : null);

        var output = Run(model, out _);

        Assert.Equal(reference.Segments, output.Segments);
        Assert.Equal(1, output.OomRetries);
        Assert.Equal(2, output.FinalRunSize);
    }

    [Fact]
    public void Out_of_memory_with_a_batch_of_one_fails_the_shard_with_that_exception()
    {
        OnnxRuntimeException? last = null;
        var model = new ThrowingModel(16, _ => last = CudaOom());
        VadBatcher? batcher = null;

        var thrown = Assert.Throws<OnnxOutOfMemoryException>(() => Run(model, out batcher));

        Assert.Same(last, thrown);
        Assert.Equal([16, 8, 4, 2, 1], model.Failed);
        Assert.Equal(1, batcher!.MaxRunSize);
    }

    [Fact]
    public void Out_of_memory_with_capacity_one_is_not_retried()
    {
        var model = new ThrowingModel(1, _ => CudaOom());
        Assert.Throws<OnnxOutOfMemoryException>(() => Run(model, out _));
        Assert.Equal([1], model.Failed);
    }

    [Fact]
    public void Other_exceptions_are_not_retried()
    {
        var error = new InvalidOperationException("model broke");
        var model = new ThrowingModel(16, _ => error);
        VadBatcher? batcher = null;

        var thrown = Assert.Throws<InvalidOperationException>(() => Run(model, out batcher));

        Assert.Same(error, thrown);
        Assert.Equal([16], model.Failed);
        Assert.Equal(16, batcher!.MaxRunSize);
    }

    [Fact]
    public void An_ort_error_that_is_not_out_of_memory_is_not_retried()
    {
        var error = new OnnxRuntimeException(OrtErrorCode.InvalidArgument, "Got invalid dimensions for input: input for the following indices index: 1 Got: 577 Expected: 576");
        var model = new ThrowingModel(16, n => n > 4 ? error : null);

        var thrown = Assert.Throws<OnnxRuntimeException>(() => Run(model, out _));

        Assert.Same(error, thrown);
        Assert.Equal([16], model.Failed);
    }

    [Theory]
    [InlineData(OrtErrorCode.Fail, "CUDA failure 2: out of memory ; GPU=0 ; hostname=x ; expr=cudaMalloc(&p, size);", true)]
    [InlineData(OrtErrorCode.RuntimeException, "Failed to allocate memory for requested buffer of size 1073741824", true)]
    [InlineData(OrtErrorCode.Fail, "Non-zero status code returned while running Conv node. Status Message: std::bad_alloc", true)]
    [InlineData(OrtErrorCode.Fail, "CUBLAS failure 3: CUBLAS_STATUS_ALLOC_FAILED ; GPU=0", true)]
    [InlineData(OrtErrorCode.RuntimeException, "CUDNN failure 2: CUDNN_STATUS_ALLOC_FAILED", true)]
    [InlineData(OrtErrorCode.Fail, "CUDA error cudaErrorMemoryAllocation:out of memory", true)]
    [InlineData(OrtErrorCode.Fail, "CUDA failure 700: an illegal memory access was encountered", false)]
    [InlineData(OrtErrorCode.Fail, "CUDA failure 209: no kernel image is available for execution on the device", false)]
    [InlineData(OrtErrorCode.Fail, "CUDA failure 20: invalid device", false)]
    [InlineData(OrtErrorCode.RuntimeException, "Exception during initialization: something else", false)]
    [InlineData(OrtErrorCode.InvalidArgument, "out of memory", false)]
    [InlineData(OrtErrorCode.NoSuchFile, "Failed to allocate memory", false)]
    [InlineData(OrtErrorCode.EpFail, "out of memory", false)]
    public void The_translation_of_ort_statuses_recognises_allocation_failures_only(OrtErrorCode code, string ortMessage, bool expected)
    {
        var e = OnnxRuntimeException.FromStatus(code, ortMessage, "Silero VAD inference");
        Assert.Equal(expected, e is OnnxOutOfMemoryException);
        Assert.Equal(code, e.ErrorCode);
        Assert.Equal(ortMessage, e.OrtMessage);
    }

    [Fact]
    public void The_pipeline_catches_the_type_not_the_text()
    {
        // Issue 14: an error whose text says "out of memory" but that the adapter did not raise as
        // OnnxOutOfMemoryException is not halved; the managed runtime's own type is.
        var untyped = new OnnxRuntimeException(OrtErrorCode.Fail, "CUDA failure 2: out of memory");
        var model = new ThrowingModel(16, n => n > 4 ? untyped : null);
        Assert.Same(untyped, Assert.Throws<OnnxRuntimeException>(() => Run(model, out _)));
        Assert.Equal([16], model.Failed);

        var insufficient = new ThrowingModel(8, n => n > 2 ? new InsufficientMemoryException() : null);
        Assert.Equal(2, Run(insufficient, out _).OomRetries); // 8 -> 4 -> 2
    }

    /// <summary>16 kHz 16-bit mono: noise bursts (the fake model's speech) between silences.</summary>
    private string WriteWav(string name, double seconds, Random rng)
    {
        const int rate = 16000;
        var samples = new short[(int)(seconds * rate)];
        var pos = rng.Next(0, rate);
        while (pos < samples.Length)
        {
            var len = rng.Next(rate / 3, 3 * rate);
            var amp = 0.2 + 0.3 * rng.NextDouble();
            for (var i = pos; i < Math.Min(samples.Length, pos + len); i++)
                samples[i] = (short)(short.MaxValue * amp * (2 * rng.NextDouble() - 1));
            pos += len + rng.Next(rate / 4, 3 * rate);
        }

        var path = Path.Combine(_dir, name);
        using var w = new BinaryWriter(File.Create(path));
        w.Write("RIFF"u8);
        w.Write(36 + samples.Length * 2);
        w.Write("WAVEfmt "u8);
        w.Write(16);
        w.Write((short)1);       // PCM
        w.Write((short)1);       // mono
        w.Write(rate);
        w.Write(rate * 2);       // byte rate
        w.Write((short)2);       // block align
        w.Write((short)16);      // bits
        w.Write("data"u8);
        w.Write(samples.Length * 2);
        foreach (var s in samples) w.Write(s);
        return path;
    }

    /// <summary><see cref="FakeVadModel"/> that throws what <c>fail</c> returns for a call's batch
    /// size, before touching anything (as <see cref="IVadModel.Run"/> must).</summary>
    private sealed class ThrowingModel(int capacity, Func<int, Exception?> fail) : IVadModel
    {
        private readonly FakeVadModel _inner = new(capacity, memoryWindows: 3);

        public int BatchCapacity => _inner.BatchCapacity;
        public int StateSize => _inner.StateSize;
        public List<int> Failed { get; } = [];
        public int LargestScored => _inner.LargestBatch;

        public void ResetState(Span<float> streamState) => _inner.ResetState(streamState);

        public void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize)
        {
            if (Failed.Count >= 100) throw new InvalidOperationException("the shard retried a failing model forever");
            if (fail(batchSize) is { } e)
            {
                Failed.Add(batchSize);
                throw e;
            }
            _inner.Run(windows, states, probabilities, batchSize);
        }
    }
}
