using System.ComponentModel.DataAnnotations;

namespace Workers.Core.Options;

/// <summary>
/// A node's settings (section <c>Fleet</c>), read by <c>workers run</c> and each worker process it
/// starts. Bound and validated once at start-up (a value that is not a number, or out of its
/// <see cref="RangeAttribute"/>, fails with the setting's full name and the accepted range), and
/// immutable after that.
/// </summary>
public sealed class FleetOptions
{
    public const string Section = "Fleet";

    /// <summary>What the supervisor, its workers and the GPU sampler call this node.</summary>
    /// <value>The default value is empty: the machine name.</value>
    public string NodeName { get; init; } = "";

    /// <summary>Where shard attempts get their private temp folder.</summary>
    /// <value>The default value is empty: <c>$TMPDIR/workers</c>.</value>
    public string TempRoot { get; init; } = "";

    /// <summary>A worker does not claim while the temp root's file system has less free space than this; 0 turns the check off.</summary>
    /// <value>The default value is 1024 MB.</value>
    [Range(0L, 1L << 40)]
    public long MinFreeDiskMb { get; init; } = 1024;

    /// <summary>On SIGTERM, how long a running shard may go on before it is given back; 0 gives it back at once.</summary>
    /// <value>The default value is 120 seconds.</value>
    [Range(0, 86_400)]
    public int DrainSeconds { get; init; } = 120;

    /// <summary>Decoder threads per worker out of its cores; 0 picks (a GPU slot: every core but one, a CPU slot: half).</summary>
    /// <value>The default value is 0 (automatic).</value>
    [Range(0, 256)]
    public int DecoderThreads { get; init; }

    /// <summary>Decoded audio one shard may keep at once, in memory and in its temp folder.</summary>
    /// <value>The default value is 2048 MB.</value>
    [Range(1L, 1L << 30)]
    public long MaxDecodedMb { get; init; } = 2048;

    /// <summary>Of <see cref="MaxDecodedMb"/>, what a shard may keep in memory instead of its temp folder; 0: files only.</summary>
    /// <value>The default value is 128 MB.</value>
    [Range(0L, 1L << 30)]
    public long MaxDecodedInMemoryMb { get; init; } = 128;

    /// <summary>Audio a decoder takes at once: the items ffmpeg decodes in it are decoded by one ffmpeg process,
    /// whose start-up (about 90 ms of CPU) is then paid once per group; 0: one ffmpeg per item.</summary>
    /// <value>The default value is 600 seconds.</value>
    [Range(0.0, 86_400.0)]
    public double DecodeGroupSeconds { get; init; } = 600;

    /// <summary>How often <c>workers run</c> samples its GPUs (GPU telemetry service).</summary>
    /// <value>The default value is 15 seconds.</value>
    [Range(0.1, 86_400.0)]
    public double TelemetrySeconds { get; init; } = 15;

    /// <summary>The nvidia-smi to ask for GPUs and telemetry.</summary>
    /// <value>The default value is empty: <c>nvidia-smi</c> on the PATH.</value>
    public string NvidiaSmi { get; init; } = "";

    /// <summary>The pipelines a worker loads, comma-separated.</summary>
    /// <value>The default value is empty: every section of <c>Pipelines</c>, plus <c>vad</c>.</value>
    public string Pipelines { get; init; } = "";

    /// <summary><see cref="NodeName"/>, or the machine name when empty.</summary>
    public string Node => NodeName is { Length: > 0 } n ? n : Environment.MachineName;

    /// <summary>Every problem at once (ranges from the properties' <see cref="RangeAttribute"/>s), or an empty list.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = SettingRanges.Check(this, Section).ToList();
        if (NodeName.Length > 0 && string.IsNullOrWhiteSpace(NodeName))
            problems.Add("Fleet:NodeName must be a name, not blank; leave it empty for the machine name.");
        return problems;
    }
}
