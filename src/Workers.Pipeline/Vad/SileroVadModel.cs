using System.Runtime.CompilerServices;
using Workers.Onnx;

namespace Workers.Pipeline.Vad;

/// <summary>
/// <see cref="IVadModel"/> over a Silero VAD v5/v6 ONNX session. The batcher keeps each stream's
/// state as one slice of 256 floats; Silero wants <c>state [2, B, 128]</c>, so a run gathers the
/// slices into <see cref="SileroVad.State"/> and scatters the new state back (2 x B x 256 floats,
/// small next to the B x 576 input). One <see cref="SileroVad"/> (its tensors and bindings) exists
/// per batch size actually used, made on first use and reused (at most capacity of them, about
/// 280 KB each at 64): a run allocates nothing and computes no padding rows. (Power-of-two buckets
/// were tried first: a shard with 12 active streams then ran 16 rows, and 20 streams ran 32, which
/// cost up to a third of the throughput.)
/// </summary>
public sealed class SileroVadModel : IVadModel, IDisposable
{
    private const int Row = SileroVad.RowSamples;
    private const int Half = SileroVad.StateSize;

    private readonly OnnxSession _session;
    private readonly SileroVad?[] _bySize;

    public SileroVadModel(OnnxSession session, int batchCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchCapacity, 1);
        _session = session;
        BatchCapacity = batchCapacity;
        _bySize = new SileroVad?[batchCapacity + 1];
    }

    public int BatchCapacity { get; }
    public int StateSize => 2 * Half;
    public string ExecutionProvider => _session.ExecutionProvider;

    public void ResetState(Span<float> streamState) => streamState.Clear();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(batchSize, BatchCapacity);
        var vad = _bySize[batchSize] ??= new SileroVad(_session, batchSize);

        windows[..(batchSize * Row)].CopyTo(vad.Input);
        var stateIn = vad.State;
        for (var i = 0; i < batchSize; i++)
        {
            states.Slice(i * 2 * Half, Half).CopyTo(stateIn.Slice(i * Half, Half));
            states.Slice(i * 2 * Half + Half, Half).CopyTo(stateIn.Slice((batchSize + i) * Half, Half));
        }

        var scores = vad.Run(); // throws before anything below: states and probabilities stay as they were

        var stateOut = vad.State;
        for (var i = 0; i < batchSize; i++)
        {
            stateOut.Slice(i * Half, Half).CopyTo(states.Slice(i * 2 * Half, Half));
            stateOut.Slice((batchSize + i) * Half, Half).CopyTo(states.Slice(i * 2 * Half + Half, Half));
        }
        scores.CopyTo(probabilities);
    }

    public void Dispose()
    {
        foreach (var vad in _bySize) vad?.Dispose();
    }
}
