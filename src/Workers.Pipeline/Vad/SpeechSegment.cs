namespace Workers.Pipeline.Vad;

/// <summary>One stretch of speech, in samples from the start of the item: [Start, End).</summary>
public readonly record struct SpeechSegment(long Start, long End)
{
    public long Length => End - Start;

    public double StartSeconds(int sampleRate) => (double)Start / sampleRate;

    public double EndSeconds(int sampleRate) => (double)End / sampleRate;

    public override string ToString() => $"[{Start}, {End})";
}
