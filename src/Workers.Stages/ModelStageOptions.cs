namespace Workers.Stages;

/// <summary>
/// One model stage of a pipeline (<c>Pipelines:&lt;name&gt;:Stages:&lt;i&gt;</c>): an ONNX model from
/// models.json run over the pipeline's speech segments, batched by seconds of audio. Validated once
/// at start-up (<see cref="Validate"/>); every error names the key and what to do.
/// </summary>
public sealed class ModelStageOptions
{
    /// <summary>The stage's name: the key of its results (table <c>segment_results.stage</c>, export fields). Required.</summary>
    public string Name { get; set; } = "";

    /// <summary>The model's name in models/models.json (kind <c>model</c>). Required.</summary>
    public string Model { get; set; } = "";

    /// <summary>What the model takes: <c>waveform</c> (16 kHz float samples [B, T]) or <c>fbank</c>
    /// (Kaldi-compatible log-mel filterbank [B, frames, bins], see <see cref="Fbank"/>).
    /// <value>The default value is <c>waveform</c>.</value></summary>
    public string Input { get; set; } = "waveform";

    /// <summary>The model input that takes the audio or features.
    /// <value>The default is the model's first float or float16 input.</value></summary>
    public string? InputName { get; set; }

    /// <summary>An int32/int64 input [B] given each row's valid length (samples, or frames for fbank).
    /// <value>The default is the model's one rank-1 integer input, if it has one.</value></summary>
    public string? LengthsInput { get; set; }

    /// <summary>A float/bool input [B, T] given 1 for valid positions and 0 for padding. <value>The default value is none.</value></summary>
    public string? MaskInput { get; set; }

    /// <summary>What to keep of each output; outputs not listed are not fetched.
    /// <value>The default keeps every output as a vector.</value></summary>
    public List<StageOutputOptions> Outputs { get; set; } = [];

    /// <summary>Audio per batch, padding included (rows x the longest row), in seconds: FunASR's
    /// <c>batch_size_s</c>, counted padded because padding is what fills memory.
    /// <value>The default value is 60.</value></summary>
    public double BatchSeconds { get; set; } = 60;

    /// <summary>Most rows per batch. <value>The default value is 256.</value></summary>
    public int MaxBatchSize { get; set; } = 256;

    /// <summary>Segments longer than this (FunASR's <c>batch_size_threshold_s</c>) are run alone or cut (<see cref="LongSegments"/>).
    /// <value>The default value is 30.</value></summary>
    public double MaxSegmentSeconds { get; set; } = 30;

    /// <summary><c>alone</c>: a long segment is one batch of its own; <c>cut</c>: it is cut into pieces of
    /// <see cref="MaxSegmentSeconds"/> overlapping by <see cref="CutOverlapSeconds"/>, and its result is
    /// the pieces' results averaged, weighted by piece length. <value>The default value is <c>alone</c>.</value></summary>
    public string LongSegments { get; set; } = "alone";

    /// <summary>Overlap between the pieces of a cut segment. <value>The default value is 1.</value></summary>
    public double CutOverlapSeconds { get; set; } = 1;

    /// <summary>Filterbank settings, used when <see cref="Input"/> is <c>fbank</c>.</summary>
    public FbankOptions Fbank { get; set; } = new();

    public const int SampleRate = 16000;

    /// <summary>Fields of the export formats (JSONL, NeMo, Lhotse) a stage may not be named after.</summary>
    public static readonly IReadOnlySet<string> ReservedNames = new SortedSet<string>(StringComparer.Ordinal)
    {
        "corpus", "file", "start", "end", "duration", "shard", "file_duration", "audio", "audio_filepath", "offset", "text",
        "id", "recording_id", "channel", "custom",
    };

    public bool IsFbank => string.Equals(Input, "fbank", StringComparison.OrdinalIgnoreCase);

    public bool CutsLongSegments => string.Equals(LongSegments, "cut", StringComparison.OrdinalIgnoreCase);

    /// <summary>Every problem, each naming its key (<paramref name="prefix"/>) and what to do.</summary>
    public IReadOnlyList<string> Validate(string prefix)
    {
        var e = new List<string>();
        if (string.IsNullOrWhiteSpace(Name)) e.Add($"{prefix}:Name is missing: give the stage a name (its results are stored and exported under it)");
        else if (!System.Text.RegularExpressions.Regex.IsMatch(Name, "^[a-z][a-z0-9_]*$"))
            e.Add($"{prefix}:Name '{Name}' must be lower-case letters, digits and '_', starting with a letter (it becomes an export field)");
        else if (ReservedNames.Contains(Name))
            e.Add($"{prefix}:Name '{Name}' is a field every export line has already ({string.Join(", ", ReservedNames)}); choose another name");
        if (string.IsNullOrWhiteSpace(Model)) e.Add($"{prefix}:Model is missing: name a model of models/models.json");
        if (!IsFbank && !string.Equals(Input, "waveform", StringComparison.OrdinalIgnoreCase))
            e.Add($"{prefix}:Input '{Input}' is not known: use 'waveform' or 'fbank'");
        if (!(BatchSeconds > 0)) e.Add($"{prefix}:BatchSeconds must be > 0 (got {BatchSeconds})");
        if (MaxBatchSize < 1) e.Add($"{prefix}:MaxBatchSize must be >= 1 (got {MaxBatchSize})");
        if (!(MaxSegmentSeconds > 0)) e.Add($"{prefix}:MaxSegmentSeconds must be > 0 (got {MaxSegmentSeconds})");
        if (!CutsLongSegments && !string.Equals(LongSegments, "alone", StringComparison.OrdinalIgnoreCase))
            e.Add($"{prefix}:LongSegments '{LongSegments}' is not known: use 'alone' or 'cut'");
        if (CutsLongSegments && !(CutOverlapSeconds >= 0 && CutOverlapSeconds < MaxSegmentSeconds / 2))
            e.Add($"{prefix}:CutOverlapSeconds must be >= 0 and below half of MaxSegmentSeconds (got {CutOverlapSeconds})");
        for (var i = 0; i < Outputs.Count; i++) e.AddRange(Outputs[i].Validate($"{prefix}:Outputs:{i}"));
        if (IsFbank) e.AddRange(Fbank.Validate($"{prefix}:Fbank"));
        return e;
    }
}

/// <summary>What a stage keeps of one model output (<c>[B]</c> or <c>[B, D]</c> per batch).</summary>
public sealed class StageOutputOptions
{
    /// <summary>The output's name in the model. Required.</summary>
    public string Name { get; set; } = "";

    /// <summary><c>vector</c>: the row as numbers; <c>topk</c>: the <see cref="TopK"/> highest entries with
    /// their labels from <see cref="Labels"/>. <value>The default value is <c>vector</c>.</value></summary>
    public string Keep { get; set; } = "vector";

    /// <summary>How many labels <c>topk</c> keeps. <value>The default value is 5.</value></summary>
    public int TopK { get; set; } = 5;

    /// <summary>One label per output entry, in order (for <c>topk</c>). <value>The default value is none (labels are the indices).</value></summary>
    public List<string> Labels { get; set; } = [];

    public bool IsTopK => string.Equals(Keep, "topk", StringComparison.OrdinalIgnoreCase);

    public IReadOnlyList<string> Validate(string prefix)
    {
        var e = new List<string>();
        if (string.IsNullOrWhiteSpace(Name)) e.Add($"{prefix}:Name is missing: name an output of the model");
        if (!IsTopK && !string.Equals(Keep, "vector", StringComparison.OrdinalIgnoreCase))
            e.Add($"{prefix}:Keep '{Keep}' is not known: use 'vector' or 'topk'");
        if (IsTopK && TopK < 1) e.Add($"{prefix}:TopK must be >= 1 (got {TopK})");
        return e;
    }
}

/// <summary>
/// Kaldi-compatible log-mel filterbank settings (Kaldi's <c>compute-fbank-feats</c> / torchaudio's
/// <c>compliance.kaldi.fbank</c> option names and defaults, except <see cref="Dither"/>, which is 0
/// here so that results are reproducible; FunASR's front end uses dither 0 at inference too).
/// <see cref="LfrM"/>/<see cref="LfrN"/> stack frames the way FunASR's Paraformer front end does.
/// </summary>
public sealed class FbankOptions
{
    /// <summary><value>The default value is 80.</value></summary>
    public int NumMelBins { get; set; } = 80;

    /// <summary><value>The default value is 25.</value></summary>
    public double FrameLengthMs { get; set; } = 25;

    /// <summary><value>The default value is 10.</value></summary>
    public double FrameShiftMs { get; set; } = 10;

    /// <summary>Gaussian dither amplitude. <value>The default value is 0 (no dither).</value></summary>
    public double Dither { get; set; }

    /// <summary><value>The default value is 0.97.</value></summary>
    public double PreemphasisCoefficient { get; set; } = 0.97;

    /// <summary><value>The default value is true.</value></summary>
    public bool RemoveDcOffset { get; set; } = true;

    /// <summary><c>povey</c>, <c>hamming</c>, <c>hanning</c> or <c>rectangular</c>. <value>The default value is <c>povey</c>.</value></summary>
    public string WindowType { get; set; } = "povey";

    /// <summary><value>The default value is 20.</value></summary>
    public double LowFreq { get; set; } = 20;

    /// <summary>Upper mel edge; 0 or negative is relative to Nyquist (Kaldi's rule). <value>The default value is 0.</value></summary>
    public double HighFreq { get; set; }

    /// <summary>Samples are scaled by this before analysis: 32768 gives Kaldi's int16 scale, as FunASR and WeNet feed it.
    /// <value>The default value is 32768.</value></summary>
    public double InputScale { get; set; } = 32768;

    /// <summary>Low frame rate (FunASR): stack this many consecutive frames into one row, <value>The default value is 1 (off).</value></summary>
    public int LfrM { get; set; } = 1;

    /// <summary>Low frame rate: one stacked row every this many frames. <value>The default value is 1 (off).</value></summary>
    public int LfrN { get; set; } = 1;

    public IReadOnlyList<string> Validate(string prefix)
    {
        var e = new List<string>();
        if (NumMelBins < 1) e.Add($"{prefix}:NumMelBins must be >= 1");
        if (!(FrameLengthMs > 0) || !(FrameShiftMs > 0)) e.Add($"{prefix}:FrameLengthMs and FrameShiftMs must be > 0");
        if (WindowType is not ("povey" or "hamming" or "hanning" or "rectangular")) e.Add($"{prefix}:WindowType '{WindowType}' is not known: use povey, hamming, hanning or rectangular");
        if (!(LowFreq >= 0)) e.Add($"{prefix}:LowFreq must be >= 0");
        if (LfrM < 1 || LfrN < 1) e.Add($"{prefix}:LfrM and LfrN must be >= 1");
        return e;
    }
}
