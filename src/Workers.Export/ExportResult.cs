namespace Workers.Export;

/// <summary>What an export wrote: the output of <see cref="CorpusExporter.RunAsync"/>.</summary>
/// <param name="Corpus">The corpus's name.</param>
/// <param name="Format">What was written.</param>
/// <param name="Destination">The file or folder written, or "standard output" for a stream.</param>
/// <param name="Segments">Lines (JSONL, NeMo) or supervisions (Lhotse) written.</param>
/// <param name="SpeechSeconds">Their speech, in seconds.</param>
/// <param name="ShardsByState">The corpus's shards by state in the export's snapshot; only succeeded shards are exported.</param>
/// <param name="Elapsed">Wall time of the export.</param>
public sealed record ExportResult(string Corpus, ExportFormat Format, string Destination, long Segments, double SpeechSeconds,
    IReadOnlyDictionary<string, int> ShardsByState, TimeSpan Elapsed)
{
    /// <summary>Lhotse: recordings written.</summary>
    public long Recordings { get; init; }

    /// <summary>Lhotse: source files left out (see the warnings).</summary>
    public long FilesSkipped { get; init; }

    /// <summary>JSONL with segment audio: what was written; null without audio.</summary>
    public SegmentAudioResult? Audio { get; init; }
}

/// <summary>The segment audio an export wrote.</summary>
/// <param name="Root">The folder it is under.</param>
/// <param name="Format">wav or flac.</param>
/// <param name="SegmentsWritten">Segment files written.</param>
/// <param name="SegmentsWithoutAudio">Segments whose source file could not be decoded.</param>
/// <param name="FilesFailed">Those source files.</param>
public sealed record SegmentAudioResult(string Root, SegmentAudioFormat Format, long SegmentsWritten, long SegmentsWithoutAudio, int FilesFailed);
