using Npgsql;
using Workers.Cli.Export;
using Workers.Dashboard.Export;
using Workers.Postgres.Export;

namespace Workers.Cli.Commands;

/// <summary>
/// `workers export`'s JSONL and segment audio (ExportCommand, jsonl format) for the dashboard's
/// <see cref="ExportJob"/>: the same <see cref="SegmentExport"/> snapshot, <see cref="SegmentJsonlWriter"/>,
/// <see cref="AtomicOutputFile"/> and <see cref="SegmentAudioWriter"/>, writing into the job's folder.
/// `workers serve` registers it; it lives here only because the export writers do (Workers.Cli/Export).
/// </summary>
public sealed class DashboardCorpusExport(NpgsqlDataSource db) : ICorpusExport
{
    /// <summary>Lines between two progress reports.</summary>
    public const int ProgressEvery = 10_000;

    /// <summary>Warning text kept for the job's result.</summary>
    private const int MaxWarningChars = 2000;

    public async Task<ExportResult> ExportAsync(ExportRequest request, string folder, IProgress<long> progress, CancellationToken ct)
    {
        await using var export = await SegmentExport.OpenAsync(db, request.Corpus, ct);
        using var file = new AtomicOutputFile(Path.Combine(folder, ExportJob.JsonlFile));
        // The audio writer warns per file from its encoding tasks too.
        using var warningText = new StringWriter();
        var warnings = TextWriter.Synchronized(warningText);
        using var audio = request.Audio == ExportAudio.None ? null : new SegmentAudioWriter(Path.Combine(folder, ExportJob.AudioFolder),
            export.Corpus.RootDir, request.Audio == ExportAudio.Flac ? SegmentAudioFormat.Flac : SegmentAudioFormat.Wav, warnings);
        using var lines = new SegmentJsonlWriter(file.Stream, export.Corpus.Name, $"'{file.Path}'");
        await foreach (var segment in export.ReadAllAsync(ct))
        {
            lines.Write(segment, audio?.Write(segment));
            if (lines.Lines % ProgressEvery == 0) progress.Report(lines.Lines);
        }
        audio?.Complete();
        lines.Flush();
        file.Commit();
        progress.Report(lines.Lines);
        var text = warningText.ToString().Trim();
        return new ExportResult(lines.Lines, lines.SpeechSeconds, audio?.SegmentsWritten ?? 0, audio?.SegmentsWithoutAudio ?? 0,
            export.TotalShards - export.SucceededShards,
            text.Length == 0 ? null : text.Length <= MaxWarningChars ? text : text[..MaxWarningChars] + " ...");
    }
}
