using System.Globalization;

namespace Workers.Stages;

/// <summary>
/// Global CMVN from a Kaldi nnet1 text file, as FunASR ships it next to its Paraformer exports
/// (<c>am.mvn</c>) and as its <c>WavFrontend</c> applies it after LFR: each feature becomes
/// <c>(x + shift) * scale</c>, with <c>shift</c> the <c>&lt;AddShift&gt;</c> component's vector and
/// <c>scale</c> the <c>&lt;Rescale&gt;</c> component's (FunASR's <c>load_cmvn</c> reads the numbers
/// between the brackets after <c>&lt;LearnRateCoef&gt;</c> of each). The file looks like:
/// <code>
/// &lt;Nnet&gt;
/// &lt;Splice&gt; 560 560
/// [ 0 ]
/// &lt;AddShift&gt; 560 560
/// &lt;LearnRateCoef&gt; 0 [ -8.31 -8.60 ... ]
/// &lt;Rescale&gt; 560 560
/// &lt;LearnRateCoef&gt; 0 [ 0.155 0.154 ... ]
/// &lt;/Nnet&gt;
/// </code>
/// </summary>
public sealed class KaldiCmvn
{
    private readonly double[] _shift;
    private readonly double[] _scale;

    public KaldiCmvn(double[] shift, double[] scale)
    {
        if (shift.Length != scale.Length || shift.Length == 0)
            throw new ArgumentException($"CMVN needs one shift and one scale per feature (got {shift.Length} shifts and {scale.Length} scales)");
        _shift = shift;
        _scale = scale;
    }

    /// <summary>Features per frame the file was made for (the <c>&lt;AddShift&gt;</c> vector's length).</summary>
    public int Width => _shift.Length;

    public ReadOnlySpan<double> Shift => _shift;

    public ReadOnlySpan<double> Scale => _scale;

    /// <summary>Reads an <c>am.mvn</c>; a file without both components, with a vector whose length is not
    /// the component's declared dimension, or with a value that is not a number, is an
    /// <see cref="InvalidDataException"/> naming the file and what is wrong.</summary>
    public static KaldiCmvn Load(string path) => Parse(File.ReadAllText(path), path);

    public static KaldiCmvn Parse(string text, string source)
    {
        var tokens = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        double[]? shift = null, scale = null;
        for (var i = 0; i < tokens.Length; i++)
        {
            if (tokens[i] is not ("<AddShift>" or "<Rescale>")) continue;
            var name = tokens[i];
            var vector = Component(tokens, i, source);
            if (name == "<AddShift>") shift = vector;
            else scale = vector;
        }
        if (shift is null || scale is null)
            throw new InvalidDataException($"{source}: not a Kaldi CMVN file as FunASR writes am.mvn: it has no {(shift is null ? "<AddShift>" : "<Rescale>")} component " +
                "(expected '<AddShift> D D' and '<Rescale> D D', each followed by '<LearnRateCoef> 0 [ D numbers ]'). Use the am.mvn shipped with the model.");
        if (shift.Length != scale.Length)
            throw new InvalidDataException($"{source}: <AddShift> has {shift.Length} values but <Rescale> has {scale.Length}; the file is damaged. Use the am.mvn shipped with the model.");
        return new KaldiCmvn(shift, scale);
    }

    /// <summary>The vector of the component at <paramref name="i"/>: '&lt;X&gt; out in &lt;LearnRateCoef&gt; c [ v... ]'.</summary>
    private static double[] Component(string[] tokens, int at, string source)
    {
        var name = tokens[at];
        if (at + 2 >= tokens.Length || !int.TryParse(tokens[at + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var dim) || dim < 1)
            throw new InvalidDataException($"{source}: {name} is not followed by its dimensions ('{name} D D'); the file is damaged. Use the am.mvn shipped with the model.");
        var j = at + 3;
        if (j < tokens.Length && tokens[j] == "<LearnRateCoef>") j += 2;
        if (j >= tokens.Length || tokens[j] != "[")
            throw new InvalidDataException($"{source}: {name} has no '[ ... ]' vector after '<LearnRateCoef> 0'; the file is damaged. Use the am.mvn shipped with the model.");
        var values = new List<double>(dim);
        for (j++; j < tokens.Length && tokens[j] != "]"; j++)
        {
            if (!double.TryParse(tokens[j], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
                throw new InvalidDataException($"{source}: {name} value {values.Count + 1} is '{tokens[j]}', not a finite number; the file is damaged. Use the am.mvn shipped with the model.");
            values.Add(v);
        }
        if (j >= tokens.Length)
            throw new InvalidDataException($"{source}: {name}'s vector is not closed with ']'; the file is cut short. Use the am.mvn shipped with the model.");
        if (values.Count != dim)
            throw new InvalidDataException($"{source}: {name} declares {dim} dimensions but its vector has {values.Count} values; the file is damaged. Use the am.mvn shipped with the model.");
        return [.. values];
    }

    /// <summary>Normalizes row-major [frames, <see cref="Width"/>] features in place: <c>(x + shift) * scale</c>, computed in double and stored as float, as FunASR's numpy front end
    /// does (its CMVN vectors are float64, the features float32).</summary>
    public void Apply(Span<float> features)
    {
        var w = _shift.Length;
        if (features.Length % w != 0)
            throw new ArgumentException($"features of {features.Length} values are not whole frames of {w}", nameof(features));
        for (var f = 0; f < features.Length; f += w)
        {
            var frame = features.Slice(f, w);
            for (var d = 0; d < w; d++) frame[d] = (float)((frame[d] + _shift[d]) * _scale[d]);
        }
    }
}
