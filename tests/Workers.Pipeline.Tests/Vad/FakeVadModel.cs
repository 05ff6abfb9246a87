using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Vad;

/// <summary>
/// A deterministic stand-in for Silero: the probability follows the mean |x| of the last
/// <c>memoryWindows</c> rows (context included), kept in the stream's state as a shift register,
/// plus a term on how many windows the state has seen. Any mix-up of state, context or padding
/// between streams changes its output.
/// </summary>
internal sealed class FakeVadModel(int batchCapacity, int memoryWindows, bool countsForever = true, int rowSamples = 576) : IVadModel
{
    // state slice: [windows seen, capped at memory] [windows seen, uncapped] [energy of the last row] ... [energy memory-1 rows ago]
    public int BatchCapacity { get; } = batchCapacity;

    public int StateSize => 2 + memoryWindows;

    /// <summary>Largest batch scored by one call.</summary>
    public int LargestBatch { get; private set; }

    /// <summary>When it returns true for a call's batch size, the call throws before touching anything.</summary>
    public Func<int, bool>? FailWhen { get; set; }

    public void ResetState(Span<float> streamState)
    {
        if (streamState.Length != StateSize) throw new ArgumentException($"state slice of {streamState.Length}, expected {StateSize}");
        streamState.Clear();
    }

    public void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize)
    {
        if (batchSize < 1 || batchSize > BatchCapacity) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size");
        if (windows.Length != batchSize * rowSamples || states.Length != batchSize * StateSize || probabilities.Length != batchSize)
            throw new ArgumentException($"spans {windows.Length}/{states.Length}/{probabilities.Length} for batch {batchSize}");
        if (FailWhen?.Invoke(batchSize) == true) throw new InsufficientMemoryException($"fake: batch of {batchSize} does not fit");
        LargestBatch = Math.Max(LargestBatch, batchSize);

        for (int b = 0; b < batchSize; b++)
        {
            var row = windows.Slice(b * rowSamples, rowSamples);
            var state = states.Slice(b * StateSize, StateSize);
            float sum = 0;
            foreach (var x in row) sum += MathF.Abs(x);
            float energy = sum / rowSamples;

            for (int j = memoryWindows - 1; j > 0; j--) state[2 + j] = state[2 + j - 1];
            state[2] = energy;
            state[0] = Math.Min(state[0] + 1, memoryWindows);
            state[1] += 1;

            int seen = (int)state[0];
            float mean = 0;
            for (int j = 0; j < seen; j++) mean += state[2 + j];
            mean /= seen;

            float p = 0.9f * mean / (mean + 0.05f) + 0.01f * seen;
            if (countsForever) p += 0.05f * (state[1] % 7) / 7;
            probabilities[b] = p;
        }
    }

    /// <summary>What upstream's loop computes for one stream alone: zero state and context at the
    /// start, context = the last samples of the previous row, last window zero-padded.</summary>
    public float[] ScoreAlone(float[] audio, int window = 512, int context = 64)
    {
        var state = new float[StateSize];
        ResetState(state);
        var row = new float[context + window];
        var p = new float[1];
        var result = new List<float>();
        for (int start = 0; start < audio.Length; start += window)
        {
            int n = Math.Min(window, audio.Length - start);
            Array.Clear(row, context, window);
            audio.AsSpan(start, n).CopyTo(row.AsSpan(context));
            Run(row, state, p, 1);
            result.Add(p[0]);
            row.AsSpan(window, context).CopyTo(row);
        }
        return [.. result];
    }
}
