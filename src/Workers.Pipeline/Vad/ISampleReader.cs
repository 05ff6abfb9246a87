namespace Workers.Pipeline.Vad;

/// <summary>
/// Mono float samples at the VAD sample rate, read forward. The batcher disposes a reader that is
/// also <see cref="IDisposable"/> when it is done with it.
/// </summary>
public interface ISampleReader
{
    /// <summary>
    /// Fills the start of <paramref name="destination"/> and returns how many samples it wrote:
    /// at most its length, possibly fewer (the caller asks again), 0 only at the end.
    /// </summary>
    int Read(Span<float> destination);
}
