namespace Workers.Audio;

/// <summary>An empty time range: no samples, no process.</summary>
internal sealed class EmptyAudioSource : IAudioSource
{
    public int SampleRate => AudioDecoder.SampleRate;

    public int Read(Span<float> dest) => 0;

    public void Dispose()
    {
    }
}
