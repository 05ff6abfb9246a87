namespace Workers.Audio;

/// <summary>
/// Decoded audio as 16 kHz mono float32 samples in [-1, 1], read front to back in pieces so
/// that a file of any length is never held in memory at once. Not thread-safe: one reader.
/// </summary>
public interface IAudioSource : IDisposable
{
    /// <summary>Always 16000.</summary>
    int SampleRate { get; }

    /// <summary>
    /// Reads up to <c>dest.Length</c> samples into <paramref name="dest"/> and returns how many;
    /// 0 means the end (or an empty <paramref name="dest"/>). May return fewer than asked
    /// before the end.
    /// </summary>
    /// <exception cref="AudioFormatException">The file turned out to be corrupt or ffmpeg rejected it.</exception>
    /// <exception cref="TimeoutException">ffmpeg produced nothing for <see cref="AudioDecoderOptions.ReadTimeout"/> and was killed.</exception>
    int Read(Span<float> dest);
}
