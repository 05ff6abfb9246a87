using System.CommandLine;
using System.Diagnostics;
using Workers.Cli.Export;
using Workers.Cli.Hosting;
using Workers.Postgres.Export;

namespace Workers.Cli.Commands;

/// <summary>
/// <c>workers export CORPUS</c>: the corpus's speech segments as JSONL, one line per segment
/// (format in <see cref="SegmentJsonlWriter"/>), streamed from the database to stdout or,
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
        cmd.SetAction((pr, ct) => CommandRunner.RunAsync((ctx, ct) => RunAsync(ctx,
            new Request(pr.GetValue(corpus)!, pr.GetValue(format)!, pr.GetValue(output), pr.GetValue(audioDir), pr.GetValue(audioFormat)), ct), ct));
        return cmd;
    }

    public sealed record Request(string Corpus, string Format, string? Output, string? AudioDir, string? AudioFormat);

    public static async Task<int> RunAsync(CliContext ctx, Request req, CancellationToken ct)
    {
        var audioFormat = Validate(req);
        var sw = Stopwatch.StartNew();
        try
        {
            return await ExportAsync(ctx, req, audioFormat, sw, ct);
        }
        catch (ExportOutputException e)
        {
            Console.Error.WriteLine("error: " + e.Message + (req.Output is null ? "" : $". '{req.Output}' was left as it was."));
            return ExitCodes.Failure;
        }
    }

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

    private static async Task<int> ExportAsync(CliContext ctx, Request req, SegmentAudioFormat audioFormat, Stopwatch sw, CancellationToken ct)
    {
        var db = await ctx.DatabaseAsync(ct);
        await using var export = await SegmentExport.OpenAsync(db, req.Corpus, ct);
        var name = export.Corpus.Name;
        if (export.SucceededShards < export.TotalShards)
        {
            var others = export.ShardsByState.Where(kv => kv.Key != "succeeded" && kv.Value > 0).Select(kv => $"{kv.Key} {kv.Value:N0}");
            Console.Error.WriteLine($"warning: {export.TotalShards - export.SucceededShards:N0} of {export.TotalShards:N0} shards are not finished " +
                $"({string.Join(", ", others)}); their segments are not in this export");
        }
        if (string.Equals(req.Format, "nemo", StringComparison.OrdinalIgnoreCase)) return await ExportNemoAsync(export, req, sw, ct);
        if (string.Equals(req.Format, "lhotse", StringComparison.OrdinalIgnoreCase)) return await ExportLhotseAsync(export, req, sw, ct);

        // Segment audio: --audio-dir, or the pipeline's own setting (Pipelines:NAME:SegmentAudio:Root,
        // one folder per corpus under it, Format wav|flac), so every export of that pipeline writes it.
        var audioDir = req.AudioDir;
        var section = $"Pipelines:{export.Corpus.Pipeline}:SegmentAudio";
        if (audioDir is null && ctx.Configuration[section + ":Root"] is { Length: > 0 } root)
        {
            audioDir = Path.Combine(root, SegmentAudioPaths.Sanitize(name.Replace('/', '_') + ".corpus", out _));
            if (req.AudioFormat is null && ctx.Configuration[section + ":Format"] is { Length: > 0 } f)
            {
                if (string.Equals(f, "flac", StringComparison.OrdinalIgnoreCase)) audioFormat = SegmentAudioFormat.Flac;
                else if (!string.Equals(f, "wav", StringComparison.OrdinalIgnoreCase))
                    throw new ArgumentException($"{section}:Format '{f}' is not supported: wav or flac.");
            }
        }
        using var file = req.Output is null ? null : new AtomicOutputFile(req.Output);
        using var audio = audioDir is null ? null : new SegmentAudioWriter(audioDir, export.Corpus.RootDir, audioFormat, Console.Error);
        // The writer hands the stream 64 KiB blocks, so stdout needs no buffer of its own (and is
        // not disposed: a reader that went away must not turn into a second error on the way out).
        var destination = file is null ? "standard output" : $"'{req.Output}'";
        using var lines = new SegmentJsonlWriter(file?.Stream ?? Console.OpenStandardOutput(), name, destination);

        await foreach (var segment in export.ReadAllAsync(ct))
            lines.Write(segment, audio?.Write(segment));
        audio?.Complete();
        lines.Flush();
        file?.Commit();
        sw.Stop();

        var rate = lines.Lines / Math.Max(sw.Elapsed.TotalSeconds, 1e-3);
        Console.Error.WriteLine($"exported {lines.Lines:N0} segments ({lines.SpeechSeconds / 3600:N2} h of speech) of '{name}' to " +
            $"{(file is null ? "standard output" : file.Path)} in {sw.Elapsed.TotalSeconds:0.0} s ({rate:N0} lines/s)");
        if (audio is not null)
        {
            Console.Error.WriteLine($"audio: {audio.SegmentsWritten:N0} segment files ({audioFormat.ToString().ToLowerInvariant()}) under {audio.Root}; " +
                $"{audio.SegmentsWithoutAudio:N0} segments without audio (source files that could not be decoded: {audio.FilesFailed:N0})");
        }
        return ExitCodes.Ok;
    }

    private static async Task<int> ExportNemoAsync(SegmentExport export, Request req, Stopwatch sw, CancellationToken ct)
    {
        using var file = req.Output is null ? null : new AtomicOutputFile(req.Output);
        var stream = file?.Stream ?? Console.OpenStandardOutput();
        long lines;
        using (var nemo = new NemoManifestWriter(stream, export.Corpus.RootDir))
        {
            await foreach (var segment in export.ReadAllAsync(ct)) nemo.Write(segment);
            lines = nemo.Lines;
        }
        stream.Flush();
        file?.Commit();
        Console.Error.WriteLine($"exported {lines:N0} segments of '{export.Corpus.Name}' as a NeMo manifest to {(file is null ? "standard output" : file.Path)} in {sw.Elapsed.TotalSeconds:0.0} s");
        return ExitCodes.Ok;
    }

    private static async Task<int> ExportLhotseAsync(SegmentExport export, Request req, Stopwatch sw, CancellationToken ct)
    {
        using var lhotse = new LhotseManifestWriter(req.Output!, export.Corpus.RootDir, Console.Error);
        await foreach (var segment in export.ReadAllAsync(ct)) lhotse.Write(segment);
        lhotse.Commit();
        Console.Error.WriteLine($"exported {lhotse.Supervisions:N0} supervisions of {lhotse.Recordings:N0} recordings of '{export.Corpus.Name}' to " +
            $"{Path.Combine(lhotse.Folder, "recordings.jsonl.gz")} and supervisions.jsonl.gz in {sw.Elapsed.TotalSeconds:0.0} s" +
            (lhotse.FilesSkipped > 0 ? $"; {lhotse.FilesSkipped:N0} files left out (see the warnings)" : ""));
        return ExitCodes.Ok;
    }
}
