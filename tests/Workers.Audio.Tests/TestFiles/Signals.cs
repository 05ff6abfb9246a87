namespace Workers.Audio.Tests.TestFiles;

/// <summary>Generated test signals.</summary>
public static class Signals
{
    /// <summary>A sine of <paramref name="amplitude"/> at <paramref name="hz"/>, <paramref name="frames"/> long, the same in every channel.</summary>
    public static double[] Sine(int frames, int sampleRate, double hz = 440, double amplitude = 0.5, int channels = 1)
    {
        var samples = new double[frames * channels];
        for (int i = 0; i < frames; i++)
            for (int c = 0; c < channels; c++)
                samples[i * channels + c] = amplitude * Math.Sin(2 * Math.PI * hz * i / sampleRate);
        return samples;
    }

    /// <summary>
    /// Distinct values in every channel and frame (a ramp plus the extremes), so that a sample
    /// from the wrong place, the wrong channel or with the wrong sign is caught.
    /// </summary>
    public static double[] Distinct(int frames, int channels = 1)
    {
        double[] edges = [-1.0, 1.0, 0.0, -0.5, 0.5, 0.999, -0.999, 1.0 / 3];
        var samples = new double[frames * channels];
        for (int i = 0; i < samples.Length; i++)
            samples[i] = i < edges.Length ? edges[i] : Math.Sin(i * 0.7) * 0.9 + (i % 7) * 0.01 - 0.03;
        return samples;
    }

    /// <summary>Reads a source to its end with a buffer of <paramref name="bufferSize"/>.</summary>
    public static float[] ReadAll(IAudioSource source, int bufferSize = 4096)
    {
        var all = new List<float>();
        var buffer = new float[bufferSize];
        int n;
        while ((n = source.Read(buffer)) > 0)
            all.AddRange(buffer.AsSpan(0, n));
        return all.ToArray();
    }

    public static float[] Decode(string path, double start = 0, double? end = null, AudioDecoderOptions? options = null)
    {
        using var source = AudioDecoder.Open(path, start, end, options);
        return ReadAll(source);
    }
}
