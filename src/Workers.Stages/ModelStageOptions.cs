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

    /// <summary>Global CMVN from a Kaldi nnet text file (FunASR's <c>am.mvn</c>, <see cref="KaldiCmvn"/>),
    /// applied to the features after LFR as <c>(x + shift) * scale</c>; <see cref="Input"/> <c>fbank</c> only.
    /// Pinned with its sha256 and checked when the stage is built. <value>The default value is none (no CMVN).</value></summary>
    public StageFileOptions? Cmvn { get; set; }

    /// <summary>Fixed padded lengths, in seconds, ascending: each batch is padded to the smallest bucket
    /// that holds its longest piece, with a fixed row count per bucket (<see cref="BatchSeconds"/> / bucket,
    /// at most <see cref="MaxBatchSize"/>), so the model only ever sees these shapes and each bucket keeps
    /// one binding and one set of buffers (what CUDA graphs need: one captured graph per bucket). A piece
    /// longer than the largest bucket is a long segment (<see cref="LongSegments"/>: run alone, or cut to
    /// the largest bucket). <value>The default value is none (each batch padded to its longest row); when
    /// the session captures CUDA graphs and the model's length is dynamic, <see cref="DefaultBuckets"/>.</value></summary>
    public List<double> Buckets { get; set; } = [];

    public const int SampleRate = 16000;

    /// <summary>Fields of the export formats (JSONL, NeMo, Lhotse) a stage may not be named after.</summary>
    public static readonly IReadOnlySet<string> ReservedNames = new SortedSet<string>(StringComparer.Ordinal)
    {
        "corpus", "file", "start", "end", "duration", "shard", "file_duration", "audio", "audio_filepath", "offset", "text",
        "id", "recording_id", "channel", "custom",
    };

    /// <summary>The buckets used when CUDA graphs are on and none are configured: 1, 2, 4, 8, ... seconds
    /// below <paramref name="maxSegmentSeconds"/>, and <paramref name="maxSegmentSeconds"/> itself (at most
    /// half of a batch is padding, and one graph per bucket stays a handful).</summary>
    public static List<double> DefaultBuckets(double maxSegmentSeconds)
    {
        var buckets = new List<double>();
        for (double b = 1; b < maxSegmentSeconds; b *= 2) buckets.Add(b);
        buckets.Add(maxSegmentSeconds);
        return buckets;
    }

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
        if (Cmvn is not null)
        {
            if (!IsFbank) e.Add($"{prefix}:Cmvn is set but Input is '{Input}': CMVN normalizes filterbank features; set Input to 'fbank' or remove Cmvn");
            e.AddRange(Cmvn.Validate($"{prefix}:Cmvn"));
        }
        for (var i = 0; i < Buckets.Count; i++)
        {
            var b = Buckets[i];
            if (!(b > 0) || !double.IsFinite(b)) e.Add($"{prefix}:Buckets:{i} must be a positive number of seconds (got {b})");
            else if (b > MaxSegmentSeconds) e.Add($"{prefix}:Buckets:{i} ({b} s) is longer than MaxSegmentSeconds ({MaxSegmentSeconds} s): no piece is that long; lower it or raise MaxSegmentSeconds");
            if (i > 0 && !(b > Buckets[i - 1])) e.Add($"{prefix}:Buckets must be strictly ascending (entry {i}, {b} s, follows {Buckets[i - 1]} s); list them shortest first, each once");
        }
        return e;
    }
}

/// <summary>What a stage keeps of one model output (<c>[B]</c> or <c>[B, D]</c> per batch).</summary>
public sealed class StageOutputOptions
{
    /// <summary>The output's name in the model. Required.</summary>
    public string Name { get; set; } = "";

    /// <summary><c>vector</c>: the row as numbers; <c>topk</c>: the <see cref="TopK"/> highest entries with
    /// their labels from <see cref="Labels"/>; <c>text</c>: an ASR output <c>[B, T', V]</c> of logits decoded
    /// greedily (argmax per frame over the first <see cref="TokenNum"/> frames of each row) into tokens from
    /// <see cref="Tokens"/>, <see cref="DropTokens"/> left out, joined as FunASR joins them (<see cref="FunAsrText"/>).
    /// <value>The default value is <c>vector</c>.</value></summary>
    public string Keep { get; set; } = "vector";

    /// <summary>How many labels <c>topk</c> keeps. <value>The default value is 5.</value></summary>
    public int TopK { get; set; } = 5;

    /// <summary>One label per output entry, in order (for <c>topk</c>). <value>The default value is none (labels are the indices).</value></summary>
    public List<string> Labels { get; set; } = [];

    /// <summary>For <c>text</c>: the token list, one token per logit (FunASR's <c>tokens.json</c>, or a
    /// <c>tokens.txt</c>, <see cref="TokenList"/>), pinned with its sha256. Required for <c>text</c>.</summary>
    public StageFileOptions? Tokens { get; set; }

    /// <summary>For <c>text</c>: the model output <c>[B]</c> (int32 or int64) giving each row's number of
    /// tokens; frames after it are not decoded, so padding never becomes text.
    /// <value>The default value is <c>token_num</c> (Paraformer's).</value></summary>
    public string TokenNum { get; set; } = "token_num";

    /// <summary>For <c>text</c>: tokens left out of the text.
    /// <value>The default value is <c>&lt;blank&gt;</c>, <c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c>, <c>&lt;unk&gt;</c>
    /// (FunASR drops blank and end of sentence ids, then <c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c>, <c>&lt;unk&gt;</c> tokens).</value></summary>
    public List<string>? DropTokens { get; set; }

    /// <summary>What <see cref="DropTokens"/> falls back to.</summary>
    public static readonly IReadOnlyList<string> DefaultDropTokens = ["<blank>", "<s>", "</s>", "<unk>"];

    public bool IsTopK => string.Equals(Keep, "topk", StringComparison.OrdinalIgnoreCase);

    public bool IsText => string.Equals(Keep, "text", StringComparison.OrdinalIgnoreCase);

    public IReadOnlyList<string> Validate(string prefix)
    {
        var e = new List<string>();
        if (string.IsNullOrWhiteSpace(Name)) e.Add($"{prefix}:Name is missing: name an output of the model");
        if (!IsTopK && !IsText && !string.Equals(Keep, "vector", StringComparison.OrdinalIgnoreCase))
            e.Add($"{prefix}:Keep '{Keep}' is not known: use 'vector', 'topk' or 'text'");
        if (IsTopK && TopK < 1) e.Add($"{prefix}:TopK must be >= 1 (got {TopK})");
        if (IsText)
        {
            if (Tokens is null) e.Add($"{prefix}:Tokens is missing: Keep 'text' needs the model's token list ({{\"File\": \"tokens.json\", \"Sha256\": \"...\"}})");
            else e.AddRange(Tokens.Validate($"{prefix}:Tokens"));
            if (string.IsNullOrWhiteSpace(TokenNum)) e.Add($"{prefix}:TokenNum is empty: name the model output that gives each row's number of tokens (Paraformer's is 'token_num')");
        }
        else if (Tokens is not null) e.Add($"{prefix}:Tokens is set but Keep is '{Keep}': a token list is for Keep 'text'");
        return e;
    }
}

/// <summary>
/// A file a stage reads besides its model (FunASR's <c>am.mvn</c>, <c>tokens.json</c>), pinned like the
/// model: its sha256 is checked when the stage is built, so a changed or damaged file stops the worker
/// at start-up instead of quietly changing results.
/// </summary>
public sealed class StageFileOptions
{
    /// <summary>The file: absolute, or relative to the model file's folder (<c>models/</c>). Required.</summary>
    public string File { get; set; } = "";

    /// <summary>Its sha256, 64 hex digits (<c>sha256sum FILE</c>). Required.</summary>
    public string Sha256 { get; set; } = "";

    public IReadOnlyList<string> Validate(string prefix)
    {
        var e = new List<string>();
        if (string.IsNullOrWhiteSpace(File)) e.Add($"{prefix}:File is missing: give the file's path (absolute, or relative to the models folder)");
        if (Sha256.Length != 64 || !Sha256.All(char.IsAsciiHexDigit))
            e.Add($"{prefix}:Sha256 must be the file's 64-hex-digit sha256 (run `sha256sum {(string.IsNullOrWhiteSpace(File) ? "FILE" : File)}`), got '{Sha256}'");
        return e;
    }

    /// <summary>The file's full path, checked to exist with the pinned sha256; relative paths are taken
    /// from <paramref name="baseDirectory"/>. Throws <see cref="StageConfigurationException"/> saying what to do.</summary>
    public string Resolve(string baseDirectory, string what)
    {
        var path = Path.GetFullPath(Path.Combine(baseDirectory, File));
        if (!System.IO.File.Exists(path))
            throw new StageConfigurationException($"{what}: {path} does not exist; put the file shipped with the model there, or correct File (a relative path is taken from {baseDirectory})");
        var actual = Workers.Onnx.FileHashes.Sha256(path);
        if (!string.Equals(actual, Sha256, StringComparison.OrdinalIgnoreCase))
            throw new StageConfigurationException($"{what}: {path} has sha256 {actual} but {Sha256} is pinned; the file is not the one configured. Put the right file there, or pin this one (sha256sum {path})");
        return path;
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
