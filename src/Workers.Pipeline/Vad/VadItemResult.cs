namespace Workers.Pipeline.Vad;

/// <summary>What the batcher found in one item.</summary>
/// <param name="ItemId">The item's <see cref="VadItem.Id"/>.</param>
/// <param name="TotalSamples">Samples read (0 when failed).</param>
/// <param name="Segments">Speech, in samples from the item's start (empty when failed).</param>
/// <param name="Probabilities">One speech probability per window, when <see cref="VadOptions.RetainProbabilities"/> is set.</param>
/// <param name="Error">Why the item failed (its reader's own exception), or null.</param>
public sealed record VadItemResult(
    long ItemId,
    long TotalSamples,
    IReadOnlyList<SpeechSegment> Segments,
    float[]? Probabilities,
    Exception? Error)
{
    public bool Succeeded => Error is null;
}
