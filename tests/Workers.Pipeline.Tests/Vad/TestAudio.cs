using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Vad;

internal static class TestAudio
{
    /// <summary>Alternating loud (speech-like) and quiet stretches of 0.1..1.5 s, reproducible from the seed.</summary>
    public static float[] Speechy(int seed, int length)
    {
        var random = new Random(seed);
        var audio = new float[length];
        int i = 0;
        bool loud = random.Next(2) == 0;
        while (i < length)
        {
            int run = random.Next(1600, 24000);
            float amplitude = loud ? 0.5f : 0.005f;
            for (int end = Math.Min(length, i + run); i < end; i++) audio[i] = amplitude * (2 * (float)random.NextDouble() - 1);
            loud = !loud;
        }
        return audio;
    }

    /// <summary>Probabilities in runs of 1..40 windows drawn from values around the thresholds.</summary>
    public static float[] Probabilities(Random random, int windows)
    {
        float[] levels = [0.02f, 0.2f, 0.25f, 0.3f, 0.34f, 0.35f, 0.36f, 0.4f, 0.49f, 0.5f, 0.51f, 0.7f, 0.95f];
        var p = new float[windows];
        int i = 0;
        while (i < windows)
        {
            int run = random.Next(1, 41);
            bool noisy = random.Next(4) == 0;
            float level = levels[random.Next(levels.Length)];
            for (int end = Math.Min(windows, i + run); i < end; i++) p[i] = noisy ? (float)random.NextDouble() : level;
        }
        return p;
    }
}

/// <summary>Audio in memory, opened anywhere; readers hand out small random chunks, as a decoder might.</summary>
internal sealed class MemorySource(float[] audio, int seed = 0) : IVadAudioSource
{
    public List<MemoryReader> Readers { get; } = [];

    /// <summary>Readers throw once they reach this sample.</summary>
    public long? FailAt { get; init; }

    public ISampleReader OpenAt(long startSample)
    {
        var reader = new MemoryReader(audio, (int)Math.Min(startSample, audio.Length), seed + Readers.Count) { FailAfter = FailAt };
        Readers.Add(reader);
        return reader;
    }
}

internal sealed class MemoryReader(float[] audio, int position, int seed) : ISampleReader, IDisposable
{
    private readonly Random _random = new(seed);

    public bool Disposed { get; private set; }

    /// <summary>Throws once the position reaches this sample.</summary>
    public long? FailAfter { get; set; }

    public int Read(Span<float> destination)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        if (FailAfter is { } limit && position >= limit) throw new IOException("fake decoder: corrupt frame");
        int n = Math.Min(Math.Min(destination.Length, audio.Length - position), _random.Next(1, 700));
        audio.AsSpan(position, n).CopyTo(destination);
        position += n;
        return n;
    }

    public void Dispose() => Disposed = true;
}
