using Workers.Pipeline.Vad;

namespace Workers.Fleet.Tests.Worker;

/// <summary>A stand-in VAD for the worker tests: a window is speech when it is loud. (The real model is tested in Workers.Pipeline.Tests.)</summary>
internal sealed class LoudIsSpeech : IVadModel
{
    public int BatchCapacity => 16;
    public int StateSize => 1;
    public void ResetState(Span<float> streamState) => streamState.Clear();
    public void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize)
    {
        var row = windows.Length / batchSize;
        for (var b = 0; b < batchSize; b++)
        {
            var w = windows.Slice(b * row, row);
            float energy = 0;
            foreach (var x in w) energy += x * x;
            probabilities[b] = energy / row > 1e-3 ? 0.95f : 0.02f;
        }
    }
}
