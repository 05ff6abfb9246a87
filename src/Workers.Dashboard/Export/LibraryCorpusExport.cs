using Npgsql;
using Lib = Workers.Export;

namespace Workers.Dashboard.Export;

/// <summary>
/// The <see cref="ExportJob"/>'s export: Workers.Export's <see cref="Lib.CorpusExporter"/> (the code behind
/// `workers export`), JSONL plus optional segment audio, written into the job's folder. Registered by every
/// process that builds the dashboard (serve, demo); a test may register another <see cref="ICorpusExport"/> after it.
/// </summary>
public sealed class LibraryCorpusExport(NpgsqlDataSource db) : ICorpusExport
{
    /// <summary>Warning text kept for the job's result.</summary>
    private const int MaxWarningChars = 2000;

    public async Task<ExportResult> ExportAsync(ExportRequest request, string folder, IProgress<long> progress, CancellationToken ct)
    {
        // The audio writer warns per file from its encoding tasks too.
        using var warningText = new StringWriter();
        var warnings = TextWriter.Synchronized(warningText);
        var result = await Lib.CorpusExporter.RunAsync(db, new Lib.ExportRequest(request.Corpus, Lib.ExportFormat.Jsonl, Path.Combine(folder, ExportJob.JsonlFile))
        {
            AudioDir = request.Audio == ExportAudio.None ? null : Path.Combine(folder, ExportJob.AudioFolder),
            AudioFormat = request.Audio == ExportAudio.Flac ? Lib.SegmentAudioFormat.Flac : Lib.SegmentAudioFormat.Wav,
            Warnings = warnings,
        }, new LinesProgress(progress), ct);
        var text = warningText.ToString().Trim();
        return new ExportResult(result.Segments, result.SpeechSeconds, result.Audio?.SegmentsWritten ?? 0, result.Audio?.SegmentsWithoutAudio ?? 0,
            result.ShardsByState.Where(kv => kv.Key != "succeeded").Sum(kv => kv.Value),
            text.Length == 0 ? null : text.Length <= MaxWarningChars ? text : text[..MaxWarningChars] + " ...");
    }

    /// <summary>Lines written, passed on as the export reports them (the job stores its progress from there).</summary>
    private sealed class LinesProgress(IProgress<long> lines) : IProgress<Lib.ExportProgress>
    {
        public void Report(Lib.ExportProgress value) => lines.Report(value.Segments);
    }
}
