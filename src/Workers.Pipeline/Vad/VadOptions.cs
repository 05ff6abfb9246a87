namespace Workers.Pipeline.Vad;

/// <summary>
/// Silero VAD settings for one pipeline (section <c>Pipelines:vad</c>). The segmentation
/// settings carry the names and defaults of <c>get_speech_timestamps</c> in snakers4/silero-vad
/// (<c>src/silero_vad/utils_vad.py</c>, v6), so a corpus segmented here matches one segmented
/// there from the same probabilities. Validated once at start-up; consumers copy the values.
/// </summary>
public sealed class VadOptions
{
    public const string Section = "Pipelines:vad";

    /// <summary>A window whose speech probability is at or above this starts (or continues) speech.</summary>
    /// <value>The default value is 0.5.</value>
    public double Threshold { get; set; } = 0.5;

    /// <summary>While in speech, a window below this counts as silence (hysteresis: windows between
    /// this and <see cref="Threshold"/> neither start nor end speech). Null means upstream's default,
    /// see <see cref="EffectiveNegThreshold"/>.</summary>
    /// <value>The default value is null: <c>max(Threshold - 0.15, 0.01)</c>.</value>
    public double? NegThreshold { get; set; }

    /// <summary>Segments not longer than this are dropped (segments produced by a max-speech split are kept, as upstream).</summary>
    /// <value>The default value is 250 ms.</value>
    public int MinSpeechMs { get; set; } = 250;

    /// <summary>Silence needed to end a segment.</summary>
    /// <value>The default value is 100 ms.</value>
    public int MinSilenceMs { get; set; } = 100;

    /// <summary>Padding added on each side of a segment; when two segments are closer than twice
    /// this, the gap is shared equally instead.</summary>
    /// <value>The default value is 30 ms.</value>
    public int SpeechPadMs { get; set; } = 30;

    /// <summary>Longer speech is split: at a silence longer than <see cref="MinSilenceAtMaxSpeechMs"/>
    /// inside it when there is one, otherwise hard, just before the limit. Null means no limit.</summary>
    /// <value>The default value is null (upstream's <c>float('inf')</c>).</value>
    public double? MaxSpeechSeconds { get; set; }

    /// <summary>Shortest silence inside a segment that a max-speech split may cut at.</summary>
    /// <value>The default value is 98 ms, as upstream.</value>
    public double MinSilenceAtMaxSpeechMs { get; set; } = 98;

    /// <summary>At a max-speech split, cut at the longest such silence (true) or the last one (false).</summary>
    /// <value>The default value is true, as upstream.</value>
    public bool UseMaxPossibleSilenceAtMaxSpeech { get; set; } = true;

    /// <summary>New samples per model window (Silero: 512 at 16 kHz, 256 at 8 kHz).</summary>
    /// <value>The default value is 512.</value>
    public int WindowSamples { get; set; } = 512;

    /// <summary>Samples of the previous window prepended to each window (Silero v5: 64 at 16 kHz, 32 at 8 kHz).</summary>
    /// <value>The default value is 64.</value>
    public int ContextSamples { get; set; } = 64;

    /// <summary>Sample rate of the audio the model sees.</summary>
    /// <value>The default value is 16000.</value>
    public int SampleRate { get; set; } = 16000;

    /// <summary>An item longer than this is scored as several sub-streams of this length, batched
    /// side by side (rounded up to whole windows). Null never splits.</summary>
    /// <value>The default value is 60 seconds: a 30-minute item runs 30 wide, for about 8% extra windows with the default warm-up.</value>
    public double? SubStreamSeconds { get; set; } = 60;

    /// <summary>How many streams a shard's long items are split into, at most: a shard of S seconds
    /// splits its items into sub-streams of at least max(<see cref="SubStreamSeconds"/>, S / SplitRows),
    /// so items are split only as far as it takes to fill this many batch rows, and no further
    /// (every sub-stream but the first costs <see cref="WarmUpSeconds"/> of extra windows). Null: the
    /// batch size, unless the worker sets a default of its own (a CPU worker uses 16: on CPU a row
    /// costs the same at batch 16 as at 64, measured, so filling 64 rows would only add warm-ups).</summary>
    /// <value>The default value is null.</value>
    public int? SplitRows { get; set; }

    /// <summary>Audio scored before each sub-stream (but the first) and thrown away, so the model's
    /// state is warm when the sub-stream's own range begins (rounded up to whole windows). Silero's
    /// state never settles to the unsplit run's (probabilities still differ by up to 0.4-0.6 thirty seconds
    /// after a cut, measured), so a split run is close, not identical: on four 5-minute files cut every
    /// 60 s, 271 of 290 segments were identical and 288 within 64 ms with 5 s (0 s: 261 and 286; 10 s: 276
    /// and 289). Set SubStreamSeconds to null for the unsplit run's segments exactly.</summary>
    /// <value>The default value is 5 seconds.</value>
    public double WarmUpSeconds { get; set; } = 5;

    /// <summary>Return each item's per-window probabilities with its segments, e.g. to re-segment
    /// with other thresholds without running the model again.</summary>
    /// <value>The default value is false.</value>
    public bool RetainProbabilities { get; set; }

    /// <summary>The exit threshold in force: <see cref="NegThreshold"/>, or upstream's <c>max(threshold - 0.15, 0.01)</c>.</summary>
    public double EffectiveNegThreshold => NegThreshold ?? Math.Max(Threshold - 0.15, 0.01);

    /// <summary>Every problem at once, or an empty list; each names its setting under <see cref="Section"/>.</summary>
    public IReadOnlyList<string> Validate() => Validate(Section);

    /// <summary>Every problem at once, or an empty list; each names its setting under <paramref name="section"/>
    /// (the pipeline's own, e.g. <c>Pipelines:strict</c>).</summary>
    public IReadOnlyList<string> Validate(string section)
    {
        var p = section + ":";
        var problems = new List<string>();
        if (!(Threshold >= 0 && Threshold <= 1)) problems.Add($"{p}Threshold must be within 0..1 (is {Threshold}).");
        if (NegThreshold is { } neg && !(neg >= 0 && neg <= 1)) problems.Add($"{p}NegThreshold must be within 0..1 (is {neg}).");
        else if (NegThreshold is { } neg2 && neg2 > Threshold)
            problems.Add($"{p}NegThreshold ({neg2}) must not exceed {p}Threshold ({Threshold}): speech ends below the first and starts at the second.");
        if (MinSpeechMs < 0) problems.Add($"{p}MinSpeechMs must be >= 0 (is {MinSpeechMs}).");
        if (MinSilenceMs < 0) problems.Add($"{p}MinSilenceMs must be >= 0 (is {MinSilenceMs}).");
        if (SpeechPadMs < 0) problems.Add($"{p}SpeechPadMs must be >= 0 (is {SpeechPadMs}).");
        if (!(MinSilenceAtMaxSpeechMs >= 0)) problems.Add($"{p}MinSilenceAtMaxSpeechMs must be >= 0 (is {MinSilenceAtMaxSpeechMs}).");
        if (SampleRate <= 0) problems.Add($"{p}SampleRate must be positive (is {SampleRate}).");
        if (WindowSamples <= 0) problems.Add($"{p}WindowSamples must be positive (is {WindowSamples}).");
        if (ContextSamples < 0 || ContextSamples > WindowSamples)
            problems.Add($"{p}ContextSamples must be within 0..WindowSamples ({WindowSamples}) (is {ContextSamples}).");
        if (MaxSpeechSeconds is { } max && SampleRate > 0 && WindowSamples > 0 && !double.IsPositiveInfinity(max)
            && !(MaxSpeechSamples > 0))
            problems.Add($"{p}MaxSpeechSeconds ({max}) must be longer than one window plus twice the speech pad "
                         + $"({(WindowSamples + 2 * SpeechPadSamples) / SampleRate} s), or null for no limit.");
        if (SubStreamSeconds is { } sub && !(sub > 0)) problems.Add($"{p}SubStreamSeconds must be positive, or null to never split (is {sub}).");
        if (SplitRows is { } rows && rows < 1) problems.Add($"{p}SplitRows must be at least 1, or null for the batch size (is {rows}).");
        if (!(WarmUpSeconds >= 0)) problems.Add($"{p}WarmUpSeconds must be >= 0 (is {WarmUpSeconds}).");
        return problems;
    }

    /// <summary>Throws an <see cref="ArgumentException"/> whose message lists every problem.</summary>
    public void ThrowIfInvalid()
    {
        var problems = Validate();
        if (problems.Count > 0)
            throw new ArgumentException("Invalid VAD options:" + Environment.NewLine + string.Join(Environment.NewLine, problems.Select(x => "  - " + x)));
    }

    // Sample counts exactly as upstream computes them (Python floats), so comparisons round alike.
    internal double MinSpeechSamples => SampleRate * (double)MinSpeechMs / 1000;
    internal double MinSilenceSamples => SampleRate * (double)MinSilenceMs / 1000;
    internal double SpeechPadSamples => SampleRate * (double)SpeechPadMs / 1000;
    internal double MinSilenceAtMaxSpeechSamples => SampleRate * MinSilenceAtMaxSpeechMs / 1000;

    // upstream: sampling_rate * max_speech_duration_s - window_size_samples - 2 * speech_pad_samples
    internal double MaxSpeechSamples => MaxSpeechSeconds is { } s
        ? SampleRate * s - WindowSamples - 2 * SpeechPadSamples
        : double.PositiveInfinity;

    internal VadOptions Clone() => (VadOptions)MemberwiseClone();
}
