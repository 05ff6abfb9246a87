namespace Workers.Pipeline.Vad;

/// <summary>
/// One sub-stream of an item: read from <see cref="ReadStart"/>, throw away the probabilities of
/// the warm-up [ReadStart, CoreStart), keep those of [CoreStart, CoreEnd). All window-aligned.
/// </summary>
/// <param name="Index">Position among the item's sub-streams.</param>
/// <param name="ReadStart">First sample read, relative to the item.</param>
/// <param name="CoreStart">First sample whose window's probability is kept.</param>
/// <param name="CoreEnd">End of the range (exclusive); null for the last sub-stream, which reads to the item's end.</param>
public readonly record struct VadSubStreamPlan(int Index, long ReadStart, long CoreStart, long? CoreEnd)
{
    public long WarmUpSamples => CoreStart - ReadStart;
}
