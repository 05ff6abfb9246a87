using Workers.Onnx;

namespace Workers.Pipeline.Vad;

/// <summary>
/// <see cref="IVadModel"/> over a Silero VAD v5/v6 ONNX session. The batcher keeps each stream's
/// state as one slice of 256 floats; Silero wants <c>state [2, B, 128]</c>, so a run gathers the
/// slices into the input tensor and scatters <c>stateN</c> back (2 x B x 256 floats, small next to
/// the B x 576 input). Tensors and bindings exist for power-of-two batch sizes up to the capacity,
/// made on first use and reused: a run allocates nothing, and a part-full batch (a shard's tail)
/// pads to the next power of two rather than to the full capacity.
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
        _buckets = new Bucket?[BitOperations.Log2Ceiling(batchCapacity) + 1];
    }

    public int BatchCapacity { get; }
    public int StateSize => 2 * Half;
    public string ExecutionProvider => _session.ExecutionProvider;

    public void ResetState(Span<float> streamState) => streamState.Clear();

    public void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(batchSize, BatchCapacity);
        var index = BitOperations.Log2Ceiling(batchSize);
        var bucket = _buckets[index] ??= new Bucket(_session, Math.Min(1 << index, BatchCapacity));
        var b = bucket.Size;

        var input = bucket.Input.Span;
        windows[..(batchSize * Row)].CopyTo(input);
        input[(batchSize * Row)..].Clear();
        var stateIn = bucket.State.Span;
        stateIn.Clear();
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

    private static class BitOperations
    {
        public static int Log2Ceiling(int n) => n <= 1 ? 0 : 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(n - 1));
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
