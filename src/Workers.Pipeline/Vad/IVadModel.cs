namespace Workers.Pipeline.Vad;

/// <summary>
/// A VAD model that scores one window for each of up to <see cref="BatchCapacity"/> streams per call.
/// </summary>
/// <remarks>
/// <para><b>Windows.</b> Row b of <c>windows</c> (each <c>ContextSamples + WindowSamples</c> floats,
/// <c>windows.Length / batchSize</c>) is the stream's previous <c>ContextSamples</c> samples (zeros
/// at its start) followed by its next window (zero-padded at its end): Silero v5's
/// <c>input [B, 576]</c> at 16 kHz.</para>
/// <para><b>State.</b> Stream-major: <c>states</c> holds <c>batchSize</c> consecutive slices of
/// <see cref="StateSize"/> floats, slice b belonging to the stream in row b; the model reads it
/// and writes the next state back in place. What a slice holds is the model's business (Silero v5:
/// 256 floats, its <c>state[0, b, :]</c> then <c>state[1, b, :]</c>); the batcher only
/// initializes slices through <see cref="ResetState"/> and copies whole slices when a stream moves
/// to another row. This is what lets streams join and leave between calls. A runtime that wants
/// <c>state [2, B, 128]</c> gathers the slices into its input tensor and scatters <c>stateN</c>
/// back: 2 x B x 256 floats a call, small next to the B x 576 input.</para>
/// <para><b>Failure.</b> If <see cref="Run"/> throws, it must leave <c>states</c> and
/// <c>probabilities</c> as they were, so the caller can run the same rows again, e.g. in smaller
/// batches after running out of memory.</para>
/// <para>Calls come from one thread at a time.</para>
/// </remarks>
public interface IVadModel
{
    /// <summary>Most rows one <see cref="Run"/> accepts.</summary>
    int BatchCapacity { get; }

    /// <summary>Floats of state per stream (Silero v5: 2 x 128).</summary>
    int StateSize { get; }

    /// <summary>Puts a new stream's state slice (<see cref="StateSize"/> floats) in the model's initial state (Silero: zeros).</summary>
    void ResetState(Span<float> streamState);

    /// <summary>
    /// Scores <paramref name="batchSize"/> rows: <paramref name="windows"/> is
    /// <c>batchSize x (context + window)</c>, <paramref name="states"/> <c>batchSize x StateSize</c>
    /// (read, then overwritten with the next state), <paramref name="probabilities"/> receives one
    /// speech probability per row.
    /// </summary>
    void Run(ReadOnlySpan<float> windows, Span<float> states, Span<float> probabilities, int batchSize);
}
