using Workers.Audio;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Processing;

/// <summary>One shard item (a time range of a file) as the VAD batcher reads it: each sub-stream the
/// batcher opens is a decoder positioned at that sample, prefetching on the thread pool. With a
/// <paramref name="corpusRoot"/>, every open is confined to it (see <see cref="CorpusFileOpener"/>).</summary>
public sealed class AudioItemSource(string fullPath, double startSeconds, double endSeconds, AudioDecoderOptions decoder, string? corpusRoot = null) : IVadAudioSource
{
    public ISampleReader OpenAt(long startSample) =>
        new PrefetchingReader(() => new AudioSourceReader(AudioDecoder.Open(fullPath, startSeconds + startSample / (double)AudioDecoder.SampleRate, endSeconds, decoder, corpusRoot)));

    private sealed class AudioSourceReader(IAudioSource source) : ISampleReader, IDisposable
    {
        public int Read(Span<float> destination) => source.Read(destination);
        public void Dispose() => source.Dispose();
    }
}
