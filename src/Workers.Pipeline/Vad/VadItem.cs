namespace Workers.Pipeline.Vad;

/// <summary>
/// One piece of audio to segment: a file, or a range of a long file.
/// </summary>
/// <param name="Id">The caller's key, returned with the result.</param>
/// <param name="Source">Where its samples come from.</param>
/// <param name="ExpectedSamples">Its length as probed, used only to plan sub-streams; the length
/// read is the one that counts. Null: unknown, never split.</param>
public sealed record VadItem(long Id, IVadAudioSource Source, long? ExpectedSamples = null)
{
    /// <summary>An item read once, front to back, from <paramref name="reader"/> (never split).</summary>
    public static VadItem FromReader(long id, ISampleReader reader) => new(id, new SingleReaderSource(reader));

    private sealed class SingleReaderSource(ISampleReader reader) : IVadAudioSource
    {
        private bool _opened;

        public ISampleReader OpenAt(long startSample)
        {
            if (startSample != 0 || _opened)
                throw new InvalidOperationException("This item's audio can be read only once, from its start.");
            _opened = true;
            return reader;
        }
    }
}
