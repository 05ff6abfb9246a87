using Workers.Onnx;

namespace Workers.Pipeline.Vad;

/// <summary>Silero VAD (v5 or v6: same interface) over <see cref="BatchSize"/> independent streams at
/// once. Each row of the input is one stream: 64 samples of context (the tail of that stream's
/// previous window) then 512 new samples at 16 kHz; one <see cref="Run"/> scores one 32 ms window
/// per stream. Tensors are allocated once here; a run copies nothing in and allocates nothing.</summary>
/// <remarks>The recurrent state ping-pongs between two tensors (one binding reads A and writes B,
/// the other the reverse), so no state is copied between windows either. Not thread-safe.</remarks>
public sealed class SileroVad : IDisposable
{
    /// <summary>Sample rate the model is run at.</summary>
    public const int SampleRate = 16000;

    /// <summary>New samples per window (32 ms at 16 kHz).</summary>
    public const int WindowSamples = 512;

    /// <summary>Samples of the previous window repeated at the start of each row.</summary>
    public const int ContextSamples = 64;

    /// <summary>Samples per input row: context + window.</summary>
    public const int RowSamples = ContextSamples + WindowSamples;

    /// <summary>Width of the recurrent state per stream and layer.</summary>
    public const int StateSize = 128;

    private readonly OrtTensor<float> input;
    private readonly OrtTensor<float> stateA;
    private readonly OrtTensor<float> stateB;
    private readonly OrtTensor<long> sampleRate;
    private readonly OrtTensor<float> probability;
    private readonly OnnxRunBinding readAWriteB;
    private readonly OnnxRunBinding readBWriteA;
    private bool stateInB;

    /// <summary>Allocates the tensors for <paramref name="batchSize"/> streams on <paramref name="session"/>,
    /// which must be a Silero VAD v5/v6 model (inputs input, state, sr; outputs output, stateN).</summary>
    public SileroVad(OnnxSession session, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        CheckInterface(session);
        Session = session;
        BatchSize = batchSize;

        var tensors = new List<IDisposable>();
        try
        {
            input = Track(tensors, OrtTensor<float>.Allocate(batchSize, RowSamples));
            stateA = Track(tensors, OrtTensor<float>.Allocate(2, batchSize, StateSize));
            stateB = Track(tensors, OrtTensor<float>.Allocate(2, batchSize, StateSize));
            sampleRate = Track(tensors, OrtTensor<long>.Allocate());
            probability = Track(tensors, OrtTensor<float>.Allocate(batchSize, 1));
            sampleRate.Span[0] = SampleRate;

            readAWriteB = Track(tensors, Bind(session, stateA, stateB));
            readBWriteA = Track(tensors, Bind(session, stateB, stateA));
        }
        catch
        {
            for (var i = tensors.Count - 1; i >= 0; i--) tensors[i].Dispose();
            throw;
        }
    }

    public OnnxSession Session { get; }

    public int BatchSize { get; }

    /// <summary>The whole input, [BatchSize, 576] row-major.</summary>
    public Span<float> Input => input.Span;

    /// <summary>The speech probability of each row from the last <see cref="Run"/>.</summary>
    public ReadOnlySpan<float> Probabilities => probability.Span;

    /// <summary>The recurrent state, [2, BatchSize, 128]: the one the next <see cref="Run"/> reads,
    /// which after a run is the one that run wrote. For callers that keep each stream's state elsewhere
    /// and gather/scatter it around a run.</summary>
    public Span<float> State => (stateInB ? stateB : stateA).Span;

    /// <summary>Row <paramref name="row"/>'s 512 new samples: write the stream's next window here.</summary>
    public Span<float> Window(int row) => input.Span.Slice((row * RowSamples) + ContextSamples, WindowSamples);

    /// <summary>Row <paramref name="row"/> in full: 64 samples of context, then the window.</summary>
    public Span<float> Row(int row) => input.Span.Slice(row * RowSamples, RowSamples);

    /// <summary>Scores one window per row and returns the probabilities. Afterwards each row's context
    /// holds the last 64 samples of the window just scored, and the state has moved on.</summary>
    public ReadOnlySpan<float> Run()
    {
        (stateInB ? readBWriteA : readAWriteB).Run();
        stateInB = !stateInB;
        var rows = input.Span;
        for (var b = 0; b < BatchSize; b++)
        {
            var row = rows.Slice(b * RowSamples, RowSamples);
            row.Slice(WindowSamples, ContextSamples).CopyTo(row);
        }
        return probability.Span;
    }

    /// <summary>Starts a new stream in row <paramref name="row"/>: zero state and context.</summary>
    public void ResetStream(int row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, BatchSize);
        var state = State;
        state.Slice(row * StateSize, StateSize).Clear();                         // layer 0
        state.Slice(((BatchSize + row) * StateSize), StateSize).Clear();         // layer 1
        Row(row)[..ContextSamples].Clear();
    }

    /// <summary>Starts new streams in every row.</summary>
    public void Reset()
    {
        stateA.Span.Clear();
        stateB.Span.Clear();
        input.Span.Clear();
    }

    public void Dispose()
    {
        readAWriteB.Dispose();
        readBWriteA.Dispose();
        input.Dispose();
        stateA.Dispose();
        stateB.Dispose();
        sampleRate.Dispose();
        probability.Dispose();
    }

    private OnnxRunBinding Bind(OnnxSession session, OrtTensor<float> stateIn, OrtTensor<float> stateOut)
    {
        var binding = session.CreateBinding();
        try
        {
            binding.BindInput("input", input);
            binding.BindInput("state", stateIn);
            binding.BindInput("sr", sampleRate);
            binding.BindOutput("output", probability);
            binding.BindOutput("stateN", stateOut);
            return binding;
        }
        catch
        {
            binding.Dispose();
            throw;
        }
    }

    private static T Track<T>(List<IDisposable> owned, T item)
        where T : IDisposable
    {
        owned.Add(item);
        return item;
    }

    private static void CheckInterface(OnnxSession session)
    {
        string[] inputs = ["input", "state", "sr"];
        string[] outputs = ["output", "stateN"];
        var missing = inputs.Where(n => session.Inputs.All(i => i.Name != n)).Select(n => "input " + n)
            .Concat(outputs.Where(n => session.Outputs.All(o => o.Name != n)).Select(n => "output " + n))
            .ToList();
        if (missing.Count > 0)
            throw new ArgumentException(
                $"{Path.GetFileName(session.ModelPath)} is not a Silero VAD v5/v6 model: it lacks {string.Join(", ", missing)} (it has {session}).",
                nameof(session));
        var types = inputs.Select(n => (n, session.InputType(n))).Concat(outputs.Select(n => (n, session.OutputType(n))))
            .Where(t => t.Item2 != (t.n == "sr" ? TensorElementType.Int64 : TensorElementType.Float))
            .Select(t => $"{t.n} is {TensorElementTypes.Name(t.Item2)}")
            .ToList();
        if (types.Count > 0)
            throw new ArgumentException(
                $"{Path.GetFileName(session.ModelPath)}: SileroVad runs the float32 export (sr int64); here {string.Join(", ", types)}. " +
                "Use the float32 model models.json pins, or bind tensors of the model's own types through OnnxSession (OrtTensor.Allocate(session.InputType(name), ...)).",
                nameof(session));
    }
}
