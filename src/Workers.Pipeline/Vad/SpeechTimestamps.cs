namespace Workers.Pipeline.Vad;

/// <summary>silero-vad's <c>get_speech_timestamps</c> over probabilities already computed.</summary>
public static class SpeechTimestamps
{
    /// <summary>
    /// Segments, in samples, for the window probabilities of one audio of
    /// <paramref name="totalSamples"/> samples (<c>ceil(totalSamples / WindowSamples)</c> windows,
    /// the last one zero-padded when partial, as upstream scores it).
    /// </summary>
    public static IReadOnlyList<SpeechSegment> Compute(ReadOnlySpan<float> probabilities, long totalSamples, VadOptions options)
    {
        var segmenter = new SpeechSegmenter(options);
        var segments = new List<SpeechSegment>();
        segmenter.Append(probabilities, segments);
        segmenter.Finish(totalSamples, segments);
        return segments;
    }
}
