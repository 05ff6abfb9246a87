using Workers.Audio;

namespace Workers.Pipeline.Processing;

/// <summary>
/// How <see cref="ShardProcessor"/> decodes items ahead of inference: how many items at once and
/// how much decoded audio a shard may keep in its temp folder. Validate once at start-up.
/// </summary>
public sealed class DecodeAheadOptions
{
    /// <summary>The defaults, shared.</summary>
    public static DecodeAheadOptions Default { get; } = new();

    /// <summary>Items decoded at once (each by its own decoder: the WAV reader, or one ffmpeg process).</summary>
    /// <value>The default value is 1.</value>
    public int DecoderThreads { get; init; } = 1;

    /// <summary>
    /// Decoded audio (16 kHz mono float32, 230 MB per hour) a shard may hold in its temp folder at
    /// once: items decoded and waiting for inference plus those being scored. A decoder waits before
    /// starting an item that would go over it, unless nothing is held (an item longer than the whole
    /// budget is still decoded, alone).
    /// </summary>
    /// <value>The default value is 2048 MB (about 9 hours of audio).</value>
    public long MaxDecodedMb { get; init; } = 2048;

    /// <summary>
    /// Of <see cref="MaxDecodedMb"/>, how much a shard may hold in memory rather than in its temp folder:
    /// an item whose expected size fits what is left goes to memory, the others to files. Memory saves
    /// a write and a read through the page cache per sample, which cost about as much as reading a
    /// 16 kHz WAV file. The blocks are kept for the next items once used, so a worker's resident
    /// memory grows by up to this much. 0: always files.
    /// </summary>
    /// <value>The default value is 128 MB (about 33 minutes of audio: a 30-minute shard).</value>
    public long MaxInMemoryMb { get; init; } = 128;

    /// <summary>
    /// Items a decoder thread takes at once, up to this many seconds of audio together (and at most
    /// <see cref="MaxGroupItems"/>, and its share of what is left to decode): the ones ffmpeg decodes are
    /// decoded by one ffmpeg process (<see cref="Workers.Audio.AudioDecoder.OpenGroup"/>), so its start-up,
    /// about 90 ms of CPU, is paid once per group. A group's items are handed over together when its
    /// ffmpeg is done, so a larger group delays the first item more. Items longer than <see cref="MaxGroupItemSeconds"/>
    /// are always decoded alone. 0: one ffmpeg per item.
    /// </summary>
    /// <value>The default value is 600 seconds.</value>
    public double GroupSeconds { get; init; } = 600;

    /// <summary>Items in one group at most (<see cref="GroupSeconds"/>): ffmpeg holds a decoder and an output file per item.</summary>
    public const int MaxGroupItems = 32;

    /// <summary>
    /// Longer items are decoded alone, streamed from their own ffmpeg, unless they are read from their file's start and
    /// named as a file a group decodes as a filter-graph source (<see cref="AudioDecoder.IsGraphSourceName"/>). One core decoding
    /// 12 files took, one ffmpeg each against groups of 12, 1.16-1.21 s against 0.57-0.60 s for 30-second MP3s,
    /// 1.29-1.35 against 0.61-0.62 for 60-second FLAC, 1.61-1.81 against 1.12-1.35 for 60-second MP3, but longer for
    /// 5-minute files as <c>-i</c> inputs (MP3 4.25-4.71 s against 4.98-5.32, 44.1 kHz WAV 1.81-1.87 against
    /// 1.93-2.30): ffmpeg starts a thread per input when it has several, whose hand-offs (system time doubled) cost
    /// more than the saved start-ups. As graph sources, which have no thread of their own, 5-minute files gain: 12 on
    /// one core took 2.96-3.21 s one ffmpeg each against 2.67-2.83 s in pairs (FLAC), 4.21-4.46 against 3.78-4.11 (MP3),
    /// 1.83-2.16 against 1.53-1.68 (44.1 kHz WAV).
    /// </summary>
    public const double MaxGroupItemSeconds = 120;

    /// <summary>Whether an item of <paramref name="seconds"/> (0 or less: unknown) of <paramref name="path"/>, read from
    /// <paramref name="startSeconds"/>, may be decoded in a group at all.</summary>
    public static bool IsGroupable(double seconds, string path, double startSeconds) =>
        seconds > 0 && (seconds <= MaxGroupItemSeconds
                        || (startSeconds == 0 && AudioDecoder.IsGraphSourceName(path)));

    /// <summary>
    /// The grouping rule: whether an item of <paramref name="seconds"/> of <paramref name="path"/>, read from
    /// <paramref name="startSeconds"/>, joins a group of <paramref name="count"/> groupable items holding
    /// <paramref name="groupSeconds"/> of audio (<see cref="GroupSeconds"/>, <see cref="MaxGroupItems"/>, <see cref="IsGroupable"/>).
    /// </summary>
    public bool Joins(int count, double groupSeconds, double seconds, string path, double startSeconds) =>
        count < MaxGroupItems && IsGroupable(seconds, path, startSeconds) && groupSeconds + seconds <= GroupSeconds;

    /// <summary>Every problem, or an empty list.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (DecoderThreads is < 1 or > 256) problems.Add($"DecoderThreads must be within 1..256 (is {DecoderThreads}).");
        if (MaxDecodedMb < 1) problems.Add($"MaxDecodedMb must be at least 1 (is {MaxDecodedMb}).");
        if (MaxInMemoryMb < 0) problems.Add($"MaxInMemoryMb must be at least 0 (is {MaxInMemoryMb}); 0 keeps decoded audio in files only.");
        if (!(GroupSeconds >= 0) || double.IsInfinity(GroupSeconds)) problems.Add($"GroupSeconds must be a number of seconds, at least 0 (is {GroupSeconds}); 0 decodes every item with an ffmpeg of its own.");
        return problems;
    }
}
