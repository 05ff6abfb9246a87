namespace Workers.Audio;

/// <summary>How <see cref="AudioDecoder"/> runs ffmpeg. Validate once at start-up with <see cref="Validate"/>.</summary>
public sealed class AudioDecoderOptions
{
    /// <summary>The defaults, shared.</summary>
    public static AudioDecoderOptions Default { get; } = new();

    /// <summary>The ffmpeg executable; a bare name is looked up on PATH.</summary>
    /// <value>The default value is "ffmpeg".</value>
    public string FfmpegPath { get; init; } = "ffmpeg";

    /// <summary>
    /// How long one <see cref="IAudioSource.Read"/> may wait for ffmpeg without receiving any
    /// data before ffmpeg is killed and the read throws <see cref="TimeoutException"/>. Time the
    /// caller spends between reads does not count.
    /// </summary>
    /// <value>The default value is 60 seconds.</value>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// When false, anything ffmpeg reports on stderr (it runs with <c>-v error</c>, so that is
    /// decode errors: corrupt frames, whose audio ffmpeg drops) makes the source throw
    /// <see cref="AudioFormatException"/> once its output is read, so no audio vanishes
    /// silently. When true, only a non-zero exit code fails the file.
    /// </summary>
    /// <value>The default value is false.</value>
    public bool TolerateDecodeErrors { get; init; }

    /// <summary>Every invalid option, each named with <paramref name="prefix"/> before it (e.g. <c>Audio:</c>, the configuration section).</summary>
    public IEnumerable<string> Problems(string prefix = "")
    {
        if (string.IsNullOrWhiteSpace(FfmpegPath))
            yield return $"{prefix}FfmpegPath must name the ffmpeg executable (a path, or a name on the PATH).";
        if (ReadTimeout <= TimeSpan.Zero && ReadTimeout != Timeout.InfiniteTimeSpan)
            yield return $"{prefix}ReadTimeout must be a positive duration such as 00:01:00, or -00:00:00.001 for none (is {ReadTimeout}).";
    }

    /// <summary>Throws <see cref="ArgumentException"/> listing every invalid option (<see cref="Problems"/>).</summary>
    public void Validate()
    {
        if (Problems().ToList() is { Count: > 0 } problems)
            throw new ArgumentException("Invalid audio decoder options: " + string.Join(" ", problems));
    }
}
