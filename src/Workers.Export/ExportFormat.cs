namespace Workers.Export;

/// <summary>What an export writes.</summary>
public enum ExportFormat
{
    /// <summary>One JSON object per speech segment (<see cref="SegmentJsonlWriter"/>), optionally with each segment's audio.</summary>
    Jsonl,

    /// <summary>A NeMo manifest: audio_filepath, offset, duration and the stages' fields (<see cref="NemoManifestWriter"/>).</summary>
    Nemo,

    /// <summary>Lhotse's recordings.jsonl.gz and supervisions.jsonl.gz in a folder (<see cref="LhotseManifestWriter"/>).</summary>
    Lhotse,
}
