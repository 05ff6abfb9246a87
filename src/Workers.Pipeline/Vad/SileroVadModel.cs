using Workers.Onnx;

namespace Workers.Pipeline.Vad;

/// <summary>
/// <see cref="IVadModel"/> over a Silero VAD v5/v6 ONNX session. The batcher keeps each stream's
/// state as one slice of 256 floats; Silero wants <c>state [2, B, 128]</c>, so a run gathers the
/// slices into the input tensor and scatters <c>stateN</c> back (2 x B x 256 floats, small next to
/// the B x 576 input). Tensors and bindings exist per batch size actually used, made on first use
/// and reused (at most capacity sets, 150 KB each at 64): a run allocates nothing and computes no
/// padding rows. (Power-of-two buckets were tried first: a shard with 12 active streams then ran
/// 16 rows, and 20 streams ran 32, which cost up to a third of the throughput.)
/// </summary>
public sealed class SileroVadModel : IVadModel, IDisposable
{
    private const int Row = SileroVad.RowSamples;
    private const int Half = SileroVad.StateSize;

    private readonly OnnxSession _session;
    private readonly Bucket?[] _buckets;

    public SileroVadModel(OnnxSession session, int batchCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchCapacity, 1);
        _session = session;
        BatchCapacity = batchCapacity;
        _buckets = new Bucket?[batchCapacity + 1];
    }

    public int BatchCapacity { get; }
    public int StateSize => 2 * Half;
    public string ExecutionProvider => _session.ExecutionProvider;

    public void ResetState(Span<float> streamState) => streamState.Clear();

    public void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(batchSize, BatchCapacity);
        var bucket = _buckets[batchSize] ??= new Bucket(_session, batchSize);
        var b = bucket.Size;

        windows[..(batchSize * Row)].CopyTo(bucket.Input.Span);
        var stateIn = bucket.State.Span;
        for (var i = 0; i < batchSize; i++)
        {
            states.Slice(i * 2 * Half, Half).CopyTo(stateIn.Slice(i * Half, Half));
            states.Slice(i * 2 * Half + Half, Half).CopyTo(stateIn.Slice((b + i) * Half, Half));
        }

        bucket.Binding.Run(); // throws before anything below: states and probabilities stay as they were

        var stateOut = bucket.StateN.Span;
        for (var i = 0; i < batchSize; i++)
        {
            stateOut.Slice(i * Half, Half).CopyTo(states.Slice(i * 2 * Half, Half));
            stateOut.Slice((b + i) * Half, Half).CopyTo(states.Slice(i * 2 * Half + Half, Half));
        }
        bucket.Probability.Span[..batchSize].CopyTo(probabilities);
    }

    public void Dispose()
    {
        foreach (var b in _buckets) b?.Dispose();
    }

    private sealed class Bucket : IDisposable
    {
        public readonly int Size;
        public readonly OrtTensor<float> Input, State, StateN, Probability;
        public readonly OrtTensor<long> SampleRate;
        public readonly OnnxRunBinding Binding;

        public Bucket(OnnxSession session, int size)
        {
            Size = size;
            Input = OrtTensor<float>.Allocate(size, Row);
            State = OrtTensor<float>.Allocate(2, size, Half);
            StateN = OrtTensor<float>.Allocate(2, size, Half);
            Probability = OrtTensor<float>.Allocate(size, 1);
            SampleRate = OrtTensor<long>.Allocate();
            SampleRate.Span[0] = SileroVad.SampleRate;
            Binding = session.CreateBinding();
            Binding.BindInput("input", Input);
            Binding.BindInput("state", State);
            Binding.BindInput("sr", SampleRate);
            Binding.BindOutput("output", Probability);
            Binding.BindOutput("stateN", StateN);
        }

        public void Dispose()
        {
            Binding.Dispose();
            Input.Dispose();
            State.Dispose();
            StateN.Dispose();
            Probability.Dispose();
            SampleRate.Dispose();
        }
    }
}
