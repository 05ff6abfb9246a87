namespace Workers.Export;

/// <summary>What to export and where: the input of <see cref="CorpusExporter.RunAsync"/>.</summary>
/// <param name="Corpus">The corpus's name.</param>
/// <param name="Format">What to write.</param>
/// <param name="Output">The file (<see cref="ExportFormat.Jsonl"/>, <see cref="ExportFormat.Nemo"/>), written
/// atomically (a temporary file beside it, renamed when complete), or the folder (<see cref="ExportFormat.Lhotse"/>,
/// required). Null: <see cref="Destination"/>.</param>
public sealed record ExportRequest(string Corpus, ExportFormat Format = ExportFormat.Jsonl, string? Output = null)
{
    /// <summary>Where lines go when <see cref="Output"/> is null (the CLI's standard output); not disposed.</summary>
    /// <value>The default value is null: then <see cref="Output"/> is required.</value>
    public Stream? Destination { get; init; }

    /// <summary>With <see cref="ExportFormat.Jsonl"/> only: also write each segment's audio, 16 kHz mono 16-bit,
    /// under this folder as &lt;file path without extension&gt;/&lt;start_ms&gt;-&lt;end_ms&gt;.wav (or .flac), and add its
    /// relative path to the line as "audio".</summary>
    /// <value>The default value is null: no audio, unless <see cref="PipelineSegmentAudio"/> names a folder for the corpus's pipeline.</value>
    public string? AudioDir { get; init; }

    /// <summary>The segment audio's format.</summary>
    /// <value>The default value is null: the pipeline's setting, else <see cref="SegmentAudioFormat.Wav"/>.</value>
    public SegmentAudioFormat? AudioFormat { get; init; }

    /// <summary>Per pipeline name, its configured segment audio (<c>Pipelines:NAME:SegmentAudio</c>): used when
    /// <see cref="AudioDir"/> is not given, so every JSONL export of that pipeline writes it (one folder per corpus under Root).</summary>
    /// <value>The default value is empty.</value>
    public IReadOnlyDictionary<string, PipelineSegmentAudio> PipelineSegmentAudio { get; init; } = new Dictionary<string, PipelineSegmentAudio>();

    /// <summary>Warnings (unfinished shards, source files whose audio cannot be read), one per line.</summary>
    /// <value>The default value is <see cref="TextWriter.Null"/>.</value>
    public TextWriter Warnings { get; init; } = TextWriter.Null;

    /// <summary>Every problem with the request, each naming the property; empty when it can run.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(Corpus)) problems.Add("Corpus must name a corpus.");
        if (!Enum.IsDefined(Format)) problems.Add($"Format {(int)Format} is not one of jsonl, nemo, lhotse.");
        if (Output is { Length: 0 }) problems.Add("Output must name a file or folder, or be null.");
        if (Format == ExportFormat.Lhotse && Output is null)
            problems.Add("Format lhotse needs Output, the folder recordings.jsonl.gz and supervisions.jsonl.gz are written in.");
        else if (Output is null && Destination is null)
            problems.Add("Output (a file) or Destination (a stream) is needed.");
        if (Format != ExportFormat.Jsonl && (AudioDir is not null || AudioFormat is not null))
            problems.Add($"AudioDir and AudioFormat go with Format jsonl only; the {Format.ToString().ToLowerInvariant()} manifest points at the source files with offsets.");
        if (AudioFormat is not null && AudioDir is null) problems.Add("AudioFormat needs AudioDir (the folder the segment audio goes to).");
        if (AudioDir is { Length: 0 }) problems.Add("AudioDir must name a folder.");
        return problems;
    }
}

/// <summary>A pipeline's configured segment audio (<c>Pipelines:NAME:SegmentAudio</c>).</summary>
/// <param name="Root">The folder under which each corpus gets its own folder.</param>
/// <param name="Format">wav or flac, as configured (checked when used, naming the setting); null: wav.</param>
public sealed record PipelineSegmentAudio(string Root, string? Format = null);
