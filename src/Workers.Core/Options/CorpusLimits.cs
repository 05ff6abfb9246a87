namespace Workers.Core.Options;

/// <summary>
/// What a speech file and a shard may plausibly be (section <c>Corpus:Limits</c>), checked at
/// enqueue by `workers enqueue` and the dashboard alike. A file outside them is recorded as a
/// failed file with the reason (which limit, what the file claims, which key to change), so a
/// hostile or broken header cannot plan years of audio or millions of shards. Validated once at
/// start-up.
/// </summary>
public sealed class CorpusLimits
{
    /// <summary>The defaults, shared.</summary>
    public static CorpusLimits Default { get; } = new();

    /// <summary>Lowest sample rate accepted, in Hz (telephone speech is 8,000 Hz; 4,000 leaves room).</summary>
    /// <value>The default value is 4000.</value>
    public int MinSampleRate { get; set; } = 4000;

    /// <summary>Highest sample rate accepted, in Hz (studio audio goes to 384,000 Hz).</summary>
    /// <value>The default value is 384000.</value>
    public int MaxSampleRate { get; set; } = 384_000;

    /// <summary>Most channels accepted (microphone arrays and ambisonics stay well below).</summary>
    /// <value>The default value is 64.</value>
    public int MaxChannels { get; set; } = 64;

    /// <summary>
    /// Longest duration accepted for one file, in seconds, from a header, ffprobe or a manifest
    /// (about 11.6 days: larger values are almost always a unit mistake or a forged header).
    /// </summary>
    /// <value>The default value is 1,000,000 seconds.</value>
    public double MaxFileSeconds { get; set; } = 1_000_000;

    /// <summary>
    /// The fewest bytes a second of audio can take in a file. A probed duration longer than the
    /// file's size divided by this is a header that claims more audio than the bytes can hold, and
    /// the file is refused. Compressed digital silence is the floor: measured with ffmpeg 5.1, 30 s
    /// of it took 439 bytes a second as FLAC, 232 as Opus and 203 as Vorbis; the default leaves
    /// more than 10x room below that and still refuses a 4 KB file claiming more than about 4 min.
    /// </summary>
    /// <value>The default value is 16 bytes per second.</value>
    public int MinBytesPerSecond { get; set; } = 16;

    /// <summary>
    /// Most items (file ranges) in one shard. A shard is closed when it reaches the duration target
    /// or this count, whichever comes first, so a corpus of many tiny files cannot make one shard
    /// whose worker holds millions of items in memory.
    /// </summary>
    /// <value>The default value is 5,000.</value>
    public int MaxItemsPerShard { get; set; } = Sharding.ShardPlanner.DefaultMaxItemsPerShard;

    /// <summary>Why a file with this format is implausible, or null when it is plausible.</summary>
    public string? CheckFormat(int sampleRate, int channels)
    {
        if (sampleRate < MinSampleRate || sampleRate > MaxSampleRate)
            return $"implausible audio: sample rate {sampleRate} Hz is outside {MinSampleRate}-{MaxSampleRate} Hz " +
                   "(Corpus:Limits:MinSampleRate / MaxSampleRate); the header is probably corrupt or forged";
        if (channels < 1 || channels > MaxChannels)
            return $"implausible audio: {channels} channels, more than Corpus:Limits:MaxChannels ({MaxChannels}); the header is probably corrupt or forged";
        return null;
    }

    /// <summary>Why a duration is implausible for a file of <paramref name="fileBytes"/> bytes (null: unknown size), or null.</summary>
    public string? CheckDuration(double seconds, long? fileBytes)
    {
        if (seconds > MaxFileSeconds)
            return $"implausible duration: {seconds:0.###} s is over Corpus:Limits:MaxFileSeconds ({MaxFileSeconds:0.###} s, {MaxFileSeconds / 86400:0.#} days)";
        if (fileBytes is long bytes && seconds > (double)bytes / MinBytesPerSecond)
            return $"implausible duration: {seconds:0.###} s in a file of {bytes} bytes would be under " +
                   $"Corpus:Limits:MinBytesPerSecond ({MinBytesPerSecond} bytes per second); the header claims more audio than the file holds";
        return null;
    }

    /// <summary>Every problem at once, or an empty list.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (MinSampleRate < 1) problems.Add($"Corpus:Limits:MinSampleRate must be at least 1 Hz (is {MinSampleRate}).");
        if (MaxSampleRate < MinSampleRate) problems.Add($"Corpus:Limits:MaxSampleRate ({MaxSampleRate}) must not be below MinSampleRate ({MinSampleRate}).");
        if (MaxChannels < 1) problems.Add($"Corpus:Limits:MaxChannels must be at least 1 (is {MaxChannels}).");
        if (!(MaxFileSeconds > 0) || !double.IsFinite(MaxFileSeconds)) problems.Add($"Corpus:Limits:MaxFileSeconds must be a positive number of seconds (is {MaxFileSeconds}).");
        if (MinBytesPerSecond < 1) problems.Add($"Corpus:Limits:MinBytesPerSecond must be at least 1 (is {MinBytesPerSecond}).");
        if (MaxItemsPerShard < 1) problems.Add($"Corpus:Limits:MaxItemsPerShard must be at least 1 (is {MaxItemsPerShard}).");
        return problems;
    }
}
