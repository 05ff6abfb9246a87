using System.CommandLine;
using Microsoft.Extensions.Options;
using Workers.Cli.Hosting;
using Workers.Export;

namespace Workers.Cli.Commands;

/// <summary>
/// <c>workers export CORPUS</c>: the corpus's speech segments as JSONL, one line per segment
/// (format in <see cref="SegmentJsonlWriter"/>; the work is <see cref="CorpusExporter"/>'s), streamed from the database to stdout or,
/// atomically, to a file; optionally each segment's audio as its own file. Only succeeded
/// shards are exported; an unfinished corpus exports what is done, with a warning. Warnings
/// and the summary go to stderr, so stdout carries nothing but the lines.
/// </summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var corpus = new Argument<string>("CORPUS") { Description = "The corpus to export (a name `workers status` lists)." };
        var format = new Option<string>("--format")
        {
            Description = "Output format: jsonl (one JSON object per speech segment), nemo (a NeMo manifest: audio_filepath, offset, duration, the stages' fields) " +
                "or lhotse (recordings.jsonl.gz and supervisions.jsonl.gz in the --output folder).",
            DefaultValueFactory = _ => "jsonl",
        };
        var output = new Option<string?>("--output") { Description = "Write to this file, atomically (a temporary file beside it, renamed when complete). Default: standard output." };
        var audioDir = new Option<string?>("--audio-dir")
        {
            Description = "Also write each segment's audio, 16 kHz mono 16-bit, under this folder as <file path without extension>/<start_ms>-<end_ms>.wav, and add its relative path to the line as \"audio\".",
        };
        var audioFormat = new Option<string?>("--audio-format") { Description = "Segment audio format with --audio-dir: wav (default) or flac (encoded by ffmpeg)." };
        var cmd = new Command("export", "Export a corpus's speech segments as JSONL (only succeeded shards), optionally with each segment's audio.")
        {
            corpus, format, output, audioDir, audioFormat,
        };
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync<Handler>((h, ct) => h.RunAsync(
            new Request(pr.GetValue(corpus)!, pr.GetValue(format)!, pr.GetValue(output), pr.GetValue(audioDir), pr.GetValue(audioFormat)), ct), ct));
        return cmd;
    }

    public sealed record Request(string Corpus, string Format, string? Output, string? AudioDir, string? AudioFormat);

    /// <summary>The database and where each pipeline's workers wrote segment audio (Pipelines:NAME:SegmentAudio).</summary>
    public sealed class Handler(WorkersDatabase database, IOptions<PipelinesOptions> pipelines)
    {
        public async Task<int> RunAsync(Request req, CancellationToken ct)
        {
            var request = ToExportRequest(req);
            try
            {
                var result = await CorpusExporter.RunAsync(await database.OpenAsync(ct), request, progress: null, ct);
                Console.Error.WriteLine(Summary(result));
                if (result.Audio is { } audio)
                {
                    Console.Error.WriteLine($"audio: {audio.SegmentsWritten:N0} segment files ({audio.Format.ToString().ToLowerInvariant()}) under {audio.Root}; " +
                        $"{audio.SegmentsWithoutAudio:N0} segments without audio (source files that could not be decoded: {audio.FilesFailed:N0})");
                }
                return ExitCodes.Ok;
            }
            catch (ExportOutputException e)
            {
                Console.Error.WriteLine("error: " + e.Message + (req.Output is null ? "" : $". '{req.Output}' was left as it was."));
                return ExitCodes.Failure;
            }
        }

        /// <summary>The command line's request, checked with its options' names, as the library's request.</summary>
        private ExportRequest ToExportRequest(Request req)
        {
            var audioFormat = Validate(req);
            var format = req.Format.ToLowerInvariant() switch { "nemo" => ExportFormat.Nemo, "lhotse" => ExportFormat.Lhotse, _ => ExportFormat.Jsonl };
            var configured = pipelines.Value;
            var segmentAudio = configured.Names.Select(configured.Get)
                .Where(p => p.SegmentAudioRoot is not null)
                .ToDictionary(p => p.Name, p => new PipelineSegmentAudio(p.SegmentAudioRoot!, p.SegmentAudioFormat));
            return new ExportRequest(req.Corpus, format, req.Output)
            {
                // The writers hand the stream 64 KiB blocks, so stdout needs no buffer of its own.
                Destination = req.Output is null ? Console.OpenStandardOutput() : null,
                AudioDir = req.AudioDir,
                AudioFormat = req.AudioFormat is null ? null : audioFormat,
                PipelineSegmentAudio = segmentAudio,
                Warnings = Console.Error,
            };
        }
    }

    private static string Summary(ExportResult r) => r.Format switch
    {
        ExportFormat.Nemo => $"exported {r.Segments:N0} segments of '{r.Corpus}' as a NeMo manifest to {r.Destination} in {r.Elapsed.TotalSeconds:0.0} s",
        ExportFormat.Lhotse => $"exported {r.Segments:N0} supervisions of {r.Recordings:N0} recordings of '{r.Corpus}' to " +
            $"{Path.Combine(r.Destination, "recordings.jsonl.gz")} and supervisions.jsonl.gz in {r.Elapsed.TotalSeconds:0.0} s" +
            (r.FilesSkipped > 0 ? $"; {r.FilesSkipped:N0} files left out (see the warnings)" : ""),
        _ => $"exported {r.Segments:N0} segments ({r.SpeechSeconds / 3600:N2} h of speech) of '{r.Corpus}' to " +
            $"{r.Destination} in {r.Elapsed.TotalSeconds:0.0} s ({r.Segments / Math.Max(r.Elapsed.TotalSeconds, 1e-3):N0} lines/s)",
    };

    private static SegmentAudioFormat Validate(Request req)
    {
        var problems = new List<string>();
        var fmt = req.Format.ToLowerInvariant();
        if (fmt is not ("jsonl" or "nemo" or "lhotse"))
            problems.Add($"--format '{req.Format}' is not supported: jsonl, nemo or lhotse.");
        if (fmt == "lhotse" && req.Output is null)
            problems.Add("--format lhotse needs --output FOLDER (recordings.jsonl.gz and supervisions.jsonl.gz are written in it).");
        if (fmt is "nemo" or "lhotse" && (req.AudioDir is not null || req.AudioFormat is not null))
            problems.Add($"--audio-dir and --audio-format go with --format jsonl only; the {fmt} manifest points at the source files with offsets.");
        var audioFormat = SegmentAudioFormat.Wav;
        if (req.AudioFormat is not null)
        {
            if (req.AudioDir is null) problems.Add("--audio-format needs --audio-dir (the folder the segment audio goes to).");
            if (string.Equals(req.AudioFormat, "flac", StringComparison.OrdinalIgnoreCase)) audioFormat = SegmentAudioFormat.Flac;
            else if (!string.Equals(req.AudioFormat, "wav", StringComparison.OrdinalIgnoreCase))
                problems.Add($"--audio-format '{req.AudioFormat}' is not supported: wav or flac.");
        }
        if (req.AudioDir is { Length: 0 }) problems.Add("--audio-dir must name a folder.");
        if (req.Output is { Length: 0 }) problems.Add("--output must name a file.");
        if (problems.Count > 0) throw new ArgumentException(string.Join(Environment.NewLine + "       ", problems));
        return audioFormat;
    }
}
