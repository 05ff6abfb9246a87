namespace Workers.Fleet.Worker;

/// <summary>One worker process's settings (command line plus the <c>Fleet</c> section).</summary>
public sealed class WorkerOptions
{
    /// <summary>Queues this worker claims from.</summary>
    /// <value>The default value is ["default"].</value>
    public IReadOnlyList<string> Queues { get; init; } = ["default"];

    /// <summary>Slot number on this node (stable across restarts of the slot).</summary>
    public int Slot { get; init; }

    /// <summary>GPU index the slot is pinned to, or null for a CPU slot.</summary>
    public string? Gpu { get; init; }

    /// <summary>The pinned GPU's uuid and name, for the registry.</summary>
    public string? GpuUuid { get; init; }
    public string? GpuName { get; init; }

    /// <summary>Cores given to this worker (<c>workers run --threads</c>), shared by decoding and inference (<see cref="SplitCores"/>).</summary>
    /// <value>The default value is 1.</value>
    public int Cores { get; init; } = 1;

    /// <summary>Intra-op threads the session got, for the registry.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>
    /// Of the cores given to this worker (<c>workers run --threads</c>, by default
    /// <c>max(1, cores / workers)</c>), how many decode: items decoded at once, each by the WAV
    /// reader or one ffmpeg process. The rest run ONNX Runtime's intra-op threads, so decoders plus
    /// intra-op threads stay within the worker's cores (<see cref="SplitCores"/>). 0 picks: on a
    /// GPU slot every core but one (the CPU's only other job is feeding the GPU), on a CPU slot half.
    /// </summary>
    /// <value>The default value is 0 (automatic). Setting: <c>Fleet:DecoderThreads</c>.</value>
    public int DecoderThreads { get; init; }

    /// <summary>
    /// Decoded audio (16 kHz mono float32, about 230 MB per hour) one shard may keep in its temp
    /// folder at once; decoding waits rather than go over it (an item longer than all of it is
    /// still decoded, alone). Not memory: the worker reads it back through the page cache.
    /// </summary>
    /// <value>The default value is 2048 MB. Setting: <c>Fleet:MaxDecodedMb</c>.</value>
    public long MaxDecodedMb { get; init; } = 2048;

    /// <summary>
    /// Of <see cref="MaxDecodedMb"/>, what one shard may keep in memory instead of its temp folder
    /// (items that fit go there whole): it saves a write and a read of the page cache per sample.
    /// The worker keeps the blocks for its next items, so its resident memory grows by up to this. 0: files only.
    /// </summary>
    /// <value>The default value is 128 MB (a 30-minute shard). Setting: <c>Fleet:MaxDecodedInMemoryMb</c>.</value>
    public long MaxDecodedInMemoryMb { get; init; } = 128;

    /// <summary>
    /// Seconds of audio a decoder thread takes at once: the items ffmpeg decodes among them are decoded by
    /// one ffmpeg process, so its start-up (about 90 ms of CPU: Debian's ffmpeg links 215 libraries) is paid
    /// once per group, not per item; a corpus of 10-second MP3s decodes about 5 times faster. The group's items
    /// come out together, so a larger group delays the first. Items over 120 s are decoded alone, where grouping
    /// was measured to gain nothing, unless they are WAV, FLAC, MP3 or Opus read from their start, which a group decodes
    /// in its main thread (<see cref="Workers.Pipeline.Processing.DecodeAheadOptions.MaxGroupItemSeconds"/>). 0: one ffmpeg per item.
    /// </summary>
    /// <value>The default value is 600 seconds. Setting: <c>Fleet:DecodeGroupSeconds</c>.</value>
    public double DecodeGroupSeconds { get; init; } = 600;

    /// <summary>
    /// Splits the worker's <paramref name="cores"/> into decoder threads and intra-op threads
    /// (<see cref="DecoderThreads"/>). Each side gets at least one, so a one-core worker has one of
    /// each and they take turns on that core: the decoder waits whenever it is ahead, so the core
    /// goes to whichever stage has work, in proportion to its cost.
    /// </summary>
    public (int Decoders, int IntraOp) SplitCores(int cores)
    {
        cores = Math.Max(1, cores);
        var decoders = DecoderThreads > 0 ? DecoderThreads : Gpu is not null ? Math.Max(1, cores - 1) : Math.Max(1, cores / 2);
        return (decoders, Math.Max(1, cores - decoders));
    }

    /// <summary>Exit 0 once no shard of <see cref="Queues"/> is queued or running.</summary>
    public bool UntilIdle { get; init; }

    /// <summary>Node name recorded with every attempt.</summary>
    /// <value>The default value is the machine name.</value>
    public string Node { get; init; } = Environment.MachineName;

    /// <summary>On SIGTERM, how long a running shard may go on before it is given back (released
    /// without spending an attempt). 0 gives it back at once.</summary>
    /// <value>The default value is 120 seconds.</value>
    public int DrainSeconds { get; init; } = 120;

    /// <summary>Where shard attempts get their private temp folder.</summary>
    /// <value>The default value is <c>$TMPDIR/workers</c>.</value>
    public string TempRoot { get; init; } = Path.Combine(Path.GetTempPath(), "workers");

    /// <summary>A worker does not claim while the temp root's file system has less free space than this.</summary>
    /// <value>The default value is 1024 MB. 0 turns the check off.</value>
    public long MinFreeDiskMb { get; init; } = 1024;

    /// <summary>Pipeline name (a section of <c>Pipelines</c>).</summary>
    /// <value>The default value is "vad".</value>
    public string Pipeline { get; init; } = "vad";

    /// <summary>Streams advanced together per inference call.</summary>
    /// <value>The default value is 64.</value>
    public int BatchSize { get; init; } = 64;

    /// <summary>Model name in models.json.</summary>
    /// <value>The default value is "silero-vad-v5".</value>
    public string Model { get; init; } = "silero-vad-v5";

    /// <summary>Folder of models.json and the fetched files.</summary>
    /// <value>The default value is "models" (relative to the working directory).</value>
    public string ModelsRoot { get; init; } = "models";

    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (Queues.Count == 0 || Queues.Any(string.IsNullOrWhiteSpace)) p.Add("--queues must name at least one queue.");
        if (BatchSize is < 1 or > 4096) p.Add($"Pipelines:{Pipeline}:BatchSize must be within 1..4096 (is {BatchSize}).");
        if (string.IsNullOrWhiteSpace(Node)) p.Add("Fleet:NodeName must not be empty.");
        if (DrainSeconds < 0) p.Add($"Fleet:DrainSeconds must be >= 0 (is {DrainSeconds}).");
        if (DecoderThreads is < 0 or > 256) p.Add($"Fleet:DecoderThreads must be within 0..256, 0 for automatic (is {DecoderThreads}).");
        if (MaxDecodedMb < 1) p.Add($"Fleet:MaxDecodedMb must be at least 1 (is {MaxDecodedMb}); decoded audio has to go somewhere.");
        if (MaxDecodedInMemoryMb < 0) p.Add($"Fleet:MaxDecodedInMemoryMb must be at least 0 (is {MaxDecodedInMemoryMb}); 0 keeps decoded audio in files only.");
        if (!(DecodeGroupSeconds >= 0) || double.IsInfinity(DecodeGroupSeconds)) p.Add($"Fleet:DecodeGroupSeconds must be a number of seconds, at least 0 (is {DecodeGroupSeconds}); 0 decodes every item with an ffmpeg of its own.");
        return p;
    }
}
