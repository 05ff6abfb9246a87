namespace Workers.Fleet.Worker;

/// <summary>One worker process's settings (command line plus the <c>Fleet</c> section).</summary>
public sealed class WorkerOptions
{
    /// <summary>Queues this worker claims from.</summary>
    /// <value>The default value is ["default"].</value>
    public IReadOnlyList<string> Queues { get; set; } = ["default"];

    /// <summary>Slot number on this node (stable across restarts of the slot).</summary>
    public int Slot { get; set; }

    /// <summary>GPU index the slot is pinned to, or null for a CPU slot.</summary>
    public string? Gpu { get; set; }

    /// <summary>The pinned GPU's uuid and name, for the registry.</summary>
    public string? GpuUuid { get; set; }
    public string? GpuName { get; set; }

    /// <summary>Intra-op threads the session got, for the registry.</summary>
    public int Threads { get; set; } = 1;

    /// <summary>Exit 0 once no shard of <see cref="Queues"/> is queued or running.</summary>
    public bool UntilIdle { get; set; }

    /// <summary>Node name recorded with every attempt.</summary>
    /// <value>The default value is the machine name.</value>
    public string Node { get; set; } = Environment.MachineName;

    /// <summary>On SIGTERM, how long a running shard may go on before it is given back (released
    /// without spending an attempt). 0 gives it back at once.</summary>
    /// <value>The default value is 120 seconds.</value>
    public int DrainSeconds { get; set; } = 120;

    /// <summary>Where shard attempts get their private temp folder.</summary>
    /// <value>The default value is <c>$TMPDIR/workers</c>.</value>
    public string TempRoot { get; set; } = Path.Combine(Path.GetTempPath(), "workers");

    /// <summary>A worker does not claim while the temp root's file system has less free space than this.</summary>
    /// <value>The default value is 1024 MB. 0 turns the check off.</value>
    public long MinFreeDiskMb { get; set; } = 1024;

    /// <summary>Pipeline name (a section of <c>Pipelines</c>).</summary>
    /// <value>The default value is "vad".</value>
    public string Pipeline { get; set; } = "vad";

    /// <summary>Streams advanced together per inference call.</summary>
    /// <value>The default value is 64.</value>
    public int BatchSize { get; set; } = 64;

    /// <summary>Model name in models.json.</summary>
    /// <value>The default value is "silero-vad-v5".</value>
    public string Model { get; set; } = "silero-vad-v5";

    /// <summary>Folder of models.json and the fetched files.</summary>
    /// <value>The default value is "models" (relative to the working directory).</value>
    public string ModelsRoot { get; set; } = "models";

    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (Queues.Count == 0 || Queues.Any(string.IsNullOrWhiteSpace)) p.Add("--queues must name at least one queue.");
        if (BatchSize is < 1 or > 4096) p.Add($"Pipelines:{Pipeline}:BatchSize must be within 1..4096 (is {BatchSize}).");
        if (string.IsNullOrWhiteSpace(Node)) p.Add("Fleet:NodeName must not be empty.");
        if (DrainSeconds < 0) p.Add($"Fleet:DrainSeconds must be >= 0 (is {DrainSeconds}).");
        return p;
    }
}
