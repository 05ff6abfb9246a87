using System.Diagnostics;
using Npgsql;
using Workers.Postgres.Export;

namespace Workers.Export;

/// <summary>
/// Exports a corpus's speech segments (only those of succeeded shards, from one consistent snapshot:
/// <see cref="SegmentExport"/>) as JSONL, a NeMo manifest or Lhotse manifests, optionally with each
/// segment's audio. The one entry point for <c>workers export</c> and the dashboard's export job:
/// a request in, progress out while it runs, a result at the end. A file output is written
/// atomically: on any failure (or cancellation) the file named is left as it was.
/// </summary>
public static class CorpusExporter
{
    /// <summary>How often progress is reported, in segments (and once at the end).</summary>
    public const int ProgressEverySegments = 10_000;

    /// <summary>Runs the export described by <paramref name="request"/>.</summary>
    /// <exception cref="ArgumentException">The request is not valid (every problem listed), or a pipeline's
    /// segment audio format is not wav or flac.</exception>
    /// <exception cref="Workers.Postgres.Corpora.CorpusNotFoundException">No corpus has that name.</exception>
    /// <exception cref="ExportOutputException">The output cannot be written (disk full, permission denied, reader gone).</exception>
    public static async Task<ExportResult> RunAsync(NpgsqlDataSource db, ExportRequest request, IProgress<ExportProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(request);
        if (request.Validate() is { Count: > 0 } problems)
            throw new ArgumentException("The export request is not valid: " + string.Join(" ", problems), nameof(request));

        var sw = Stopwatch.StartNew();
        await using var export = await SegmentExport.OpenAsync(db, request.Corpus, ct);
        if (export.SucceededShards < export.TotalShards)
        {
            var others = export.ShardsByState.Where(kv => kv.Key != "succeeded" && kv.Value > 0).Select(kv => $"{kv.Key} {kv.Value:N0}");
            request.Warnings.WriteLine($"warning: {export.TotalShards - export.SucceededShards:N0} of {export.TotalShards:N0} shards are not finished " +
                $"({string.Join(", ", others)}); their segments are not in this export");
        }
        return request.Format switch
        {
            ExportFormat.Nemo => await NemoAsync(export, request, progress, sw, ct),
            ExportFormat.Lhotse => await LhotseAsync(export, request, progress, sw, ct),
            _ => await JsonlAsync(export, request, progress, sw, ct),
        };
    }

    private static async Task<ExportResult> JsonlAsync(SegmentExport export, ExportRequest request, IProgress<ExportProgress>? progress, Stopwatch sw, CancellationToken ct)
    {
        var name = export.Corpus.Name;
        var (audioDir, audioFormat) = SegmentAudio(request, export.Corpus.Pipeline, name);
        using var file = request.Output is null ? null : new AtomicOutputFile(request.Output);
        using var audio = audioDir is null ? null : new SegmentAudioWriter(audioDir, export.Corpus.RootDir, audioFormat, request.Warnings);
        // The writer hands the stream 64 KiB blocks, so the destination needs no buffer of its own (and is
        // not disposed: a reader that went away must not turn into a second error on the way out).
        var destination = file is null ? "standard output" : $"'{request.Output}'";
        using var lines = new SegmentJsonlWriter(file?.Stream ?? request.Destination!, name, destination);

        await foreach (var segment in export.ReadAllAsync(ct))
        {
            lines.Write(segment, audio?.Write(segment));
            if (lines.Lines % ProgressEverySegments == 0) progress?.Report(new ExportProgress(lines.Lines, lines.SpeechSeconds));
        }
        audio?.Complete();
        lines.Flush();
        file?.Commit();
        sw.Stop();
        progress?.Report(new ExportProgress(lines.Lines, lines.SpeechSeconds));
        return new ExportResult(name, ExportFormat.Jsonl, file?.Path ?? "standard output", lines.Lines, lines.SpeechSeconds, export.ShardsByState, sw.Elapsed)
        {
            Audio = audio is null ? null : new SegmentAudioResult(audio.Root, audioFormat, audio.SegmentsWritten, audio.SegmentsWithoutAudio, audio.FilesFailed),
        };
    }

    /// <summary>The request's segment audio, or the pipeline's own setting (Pipelines:NAME:SegmentAudio:Root,
    /// one folder per corpus under it, Format wav|flac), so every export of that pipeline writes it.</summary>
    private static (string? Dir, SegmentAudioFormat Format) SegmentAudio(ExportRequest request, string pipeline, string corpus)
    {
        var format = request.AudioFormat ?? SegmentAudioFormat.Wav;
        if (request.AudioDir is not null) return (request.AudioDir, format);
        if (!request.PipelineSegmentAudio.TryGetValue(pipeline, out var configured) || configured.Root is not { Length: > 0 } root) return (null, format);
        var dir = Path.Combine(root, SegmentAudioPaths.Sanitize(corpus.Replace('/', '_') + ".corpus", out _));
        if (request.AudioFormat is null && configured.Format is { Length: > 0 } f)
        {
            if (string.Equals(f, "flac", StringComparison.OrdinalIgnoreCase)) format = SegmentAudioFormat.Flac;
            else if (!string.Equals(f, "wav", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"Pipelines:{pipeline}:SegmentAudio:Format '{f}' is not supported: wav or flac.");
        }
        return (dir, format);
    }

    private static async Task<ExportResult> NemoAsync(SegmentExport export, ExportRequest request, IProgress<ExportProgress>? progress, Stopwatch sw, CancellationToken ct)
    {
        using var file = request.Output is null ? null : new AtomicOutputFile(request.Output);
        var stream = file?.Stream ?? request.Destination!;
        long lines;
        double speech = 0;
        using (var nemo = new NemoManifestWriter(stream, export.Corpus.RootDir))
        {
            await foreach (var segment in export.ReadAllAsync(ct))
            {
                nemo.Write(segment);
                speech += segment.EndSeconds - segment.StartSeconds;
                if (nemo.Lines % ProgressEverySegments == 0) progress?.Report(new ExportProgress(nemo.Lines, speech));
            }
            lines = nemo.Lines;
        }
        stream.Flush();
        file?.Commit();
        sw.Stop();
        progress?.Report(new ExportProgress(lines, speech));
        return new ExportResult(export.Corpus.Name, ExportFormat.Nemo, file?.Path ?? "standard output", lines, speech, export.ShardsByState, sw.Elapsed);
    }

    private static async Task<ExportResult> LhotseAsync(SegmentExport export, ExportRequest request, IProgress<ExportProgress>? progress, Stopwatch sw, CancellationToken ct)
    {
        using var lhotse = new LhotseManifestWriter(request.Output!, export.Corpus.RootDir, request.Warnings);
        double speech = 0;
        long read = 0;
        await foreach (var segment in export.ReadAllAsync(ct))
        {
            var before = lhotse.Supervisions;
            lhotse.Write(segment);
            if (lhotse.Supervisions > before) speech += segment.EndSeconds - segment.StartSeconds; // a skipped file's segments are not written
            if (++read % ProgressEverySegments == 0) progress?.Report(new ExportProgress(lhotse.Supervisions, speech));
        }
        lhotse.Commit();
        sw.Stop();
        progress?.Report(new ExportProgress(lhotse.Supervisions, speech));
        return new ExportResult(export.Corpus.Name, ExportFormat.Lhotse, lhotse.Folder, lhotse.Supervisions, speech, export.ShardsByState, sw.Elapsed)
        {
            Recordings = lhotse.Recordings,
            FilesSkipped = lhotse.FilesSkipped,
        };
    }
}
