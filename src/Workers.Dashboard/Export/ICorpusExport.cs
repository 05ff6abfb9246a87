namespace Workers.Dashboard.Export;

/// <summary>Segment audio written beside the JSONL lines, or none.</summary>
public enum ExportAudio
{
    None,
    Wav,
    Flac,
}

/// <summary>What the Export page asks for: a corpus (by name) and whether each segment's audio is written too.</summary>
public sealed record ExportRequest(string Corpus, ExportAudio Audio = ExportAudio.None);

/// <summary>What an export wrote.</summary>
/// <param name="UnfinishedShards">Shards not succeeded in the export's snapshot: their segments are not in it.</param>
/// <param name="Warnings">Per-file warnings of the audio writer (files that could not be decoded), bounded; null when none.</param>
public sealed record ExportResult(long Segments, double SpeechSeconds, long AudioFiles, long SegmentsWithoutAudio, int UnfinishedShards, string? Warnings);

/// <summary>
/// The export code an <see cref="ExportJob"/> calls: <see cref="LibraryCorpusExport"/> (Workers.Export, the
/// code behind `workers export`), registered by <see cref="DashboardApp"/>; an interface so that tests can
/// hold an export mid-way.
/// </summary>
public interface ICorpusExport
{
    /// <summary>
    /// Writes <paramref name="folder"/>/<see cref="ExportJob.JsonlFile"/> (atomically: complete or
    /// absent) and, with audio, each segment's audio under <paramref name="folder"/>/<see cref="ExportJob.AudioFolder"/>;
    /// reports the number of lines written now and then. Honours <paramref name="ct"/> between segments.
    /// </summary>
    /// <exception cref="Workers.Postgres.Corpora.CorpusNotFoundException">No corpus has that name.</exception>
    Task<ExportResult> ExportAsync(ExportRequest request, string folder, IProgress<long> progress, CancellationToken ct);
}
