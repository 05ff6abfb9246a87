namespace Workers.Stages.Models;

/// <summary>
/// Small real ONNX models whose answers can be computed independently, written with
/// <see cref="OnnxGraphWriter"/>: the tests prove the model stage with them, and
/// <c>workers-bench pipeline</c> times the stage with <see cref="EnergyProjection"/>.
/// </summary>
public static class ReferenceModels
{
    /// <summary>The projection of <see cref="EnergyProjection"/>: features [rms, mean] times this 2 x 4 matrix, plus <see cref="Bias"/>.</summary>
    public static readonly float[] Projection = [1.0f, -2.0f, 0.5f, 3.0f, 0.25f, 4.0f, -1.0f, 2.0f];

    /// <summary>The bias added after <see cref="Projection"/>.</summary>
    public static readonly float[] Bias = [0.1f, 0.2f, -0.3f, 0.0f];

    /// <summary>Vector size of <see cref="EnergyProjection"/>'s output.</summary>
    public const int Dimensions = 4;

    /// <summary>How the valid part of each padded row is told to the model.</summary>
    public enum Validity
    {
        /// <summary>An int64 input <c>lengths</c> [B] (samples).</summary>
        Lengths,
        /// <summary>A float input <c>mask</c> [B, T]: 1 for a sample, 0 for padding.</summary>
        Mask,
    }

    /// <summary>
    /// <c>waveform</c> [B, T] (float, or float16 with <paramref name="float16"/>) plus lengths or a
    /// mask → <c>embedding</c> [B, 4] (same element type): per row, the RMS and the mean of the valid
    /// samples, times <see cref="Projection"/>, plus <see cref="Bias"/>. <see cref="Expected"/> computes the same.
    /// </summary>
    public static byte[] EnergyProjection(Validity validity = Validity.Lengths, bool float16 = false)
    {
        var g = new OnnxGraphWriter();
        var io = float16 ? OnnxDataType.Float16 : OnnxDataType.Float;
        var w = g.Input("waveform", io, -1, -1);
        if (float16) w = g.Node("Cast", [w], ("to", OnnxDataType.Float));
        string mask, count;
        if (validity == Validity.Lengths)
        {
            var lengths = g.Input("lengths", OnnxDataType.Int64, -1);
            mask = MaskFromLengths(g, w, lengths, axis: 1);
            count = g.Node("Cast", [g.Node("Unsqueeze", [lengths, g.Ints([1L], 1)])], ("to", OnnxDataType.Float));
        }
        else
        {
            mask = g.Input("mask", OnnxDataType.Float, -1, -1);
            count = g.Node("ReduceSum", [mask, g.Ints([1L], 1)], ("keepdims", 1L));
        }
        var axis1 = g.Ints([1L], 1);
        var sumSq = g.Node("ReduceSum", [g.Node("Mul", [g.Node("Mul", [w, w]), mask]), axis1], ("keepdims", 1L));
        var rms = g.Node("Sqrt", [g.Node("Div", [sumSq, count])]);
        var mean = g.Node("Div", [g.Node("ReduceSum", [g.Node("Mul", [w, mask]), axis1], ("keepdims", 1L)), count]);
        var features = g.Node("Concat", [rms, mean], ("axis", 1L));
        var projected = g.Node("Add", [g.Node("MatMul", [features, g.Floats(Projection, 2, Dimensions)]), g.Floats(Bias, Dimensions)]);
        if (float16) g.NodeTo("Cast", [projected], ["embedding"], ("to", OnnxDataType.Float16));
        else g.NodeTo("Identity", [projected], ["embedding"]);
        g.Output("embedding", io, -1, Dimensions);
        return g.ToBytes();
    }

    /// <summary>What <see cref="EnergyProjection"/> answers for one segment's samples, computed in double precision.</summary>
    public static float[] Expected(ReadOnlySpan<float> samples)
    {
        double sq = 0, sum = 0;
        foreach (var s in samples)
        {
            sq += (double)s * s;
            sum += s;
        }
        var rms = Math.Sqrt(sq / samples.Length);
        var mean = sum / samples.Length;
        var result = new float[Dimensions];
        for (var d = 0; d < Dimensions; d++) result[d] = (float)(rms * Projection[d] + mean * Projection[Dimensions + d] + Bias[d]);
        return result;
    }

    /// <summary>
    /// A fixed-shape model (what CUDA graphs need): <c>waveform</c> [<paramref name="batch"/>,
    /// <paramref name="samples"/>] → <c>energy</c> [batch, 1], the sum of squares of each row.
    /// No lengths: zero padding adds nothing, any other padding would show.
    /// </summary>
    public static byte[] FixedEnergy(int batch, int samples)
    {
        var g = new OnnxGraphWriter();
        var w = g.Input("waveform", OnnxDataType.Float, batch, samples);
        g.NodeTo("ReduceSum", [g.Node("Mul", [w, w]), g.Ints([1L], 1)], ["energy"], ("keepdims", 1L));
        g.Output("energy", OnnxDataType.Float, batch, 1);
        return g.ToBytes();
    }

    /// <summary>
    /// A filterbank model: <c>features</c> [B, N, M] plus <c>feature_lengths</c> [B] (frames) →
    /// <c>mean</c> [B, M], the mean of each row's valid frames.
    /// </summary>
    public static byte[] FbankMean(int bins)
    {
        var g = new OnnxGraphWriter();
        var f = g.Input("features", OnnxDataType.Float, -1, -1, bins);
        var lengths = g.Input("feature_lengths", OnnxDataType.Int64, -1);
        var mask = g.Node("Unsqueeze", [MaskFromLengths(g, f, lengths, axis: 1), g.Ints([2L], 1)]);
        var sum = g.Node("ReduceSum", [g.Node("Mul", [f, mask]), g.Ints([1L], 1)], ("keepdims", 0L));
        var count = g.Node("Cast", [g.Node("Unsqueeze", [lengths, g.Ints([1L], 1)])], ("to", OnnxDataType.Float));
        g.NodeTo("Div", [sum, count], ["mean"]);
        g.Output("mean", OnnxDataType.Float, -1, bins);
        return g.ToBytes();
    }

    /// <summary>
    /// A Paraformer-shaped ASR model (the signature of FunASR's export): <c>speech</c> [B, T, <paramref name="width"/>]
    /// float plus <c>speech_lengths</c> [B] int32 (feature frames) → <c>logits</c> [B, T, V] and <c>token_num</c> [B]
    /// int32. Frame t's logits are its first V = <paramref name="bias"/>.Length features plus <paramref name="bias"/>,
    /// so the token that wins each frame can be computed from the features alone; <c>token_num</c> is the row's
    /// length, one token per frame. On a zero (padding) frame the bias alone decides, so a token there shows.
    /// With <paramref name="float16Logits"/> the logits are cast to float16 (as a half-precision export gives them), and
    /// <c>token_num</c> is then int64 (exports differ there). With <paramref name="trimToLongest"/> the logits have as many
    /// frames as the batch's longest row, not as the input (Paraformer's decoder gives the batch's most tokens): an
    /// output axis the data decides, declared <c>logits_length</c> as FunASR's export names it.
    /// </summary>
    public static byte[] GreedyAsr(int width, float[] bias, bool float16Logits = false, bool trimToLongest = false)
    {
        var g = new OnnxGraphWriter();
        var speech = g.Input("speech", OnnxDataType.Float, -1, -1, width);
        var lengths = g.Input("speech_lengths", OnnxDataType.Int32, -1);
        var head = g.Node("Slice", [speech, g.Ints([0L], 1), g.Ints([(long)bias.Length], 1), g.Ints([2L], 1)]);
        if (trimToLongest)
        {
            var longest = g.Node("Cast", [g.Node("ReduceMax", [lengths], ("keepdims", 1L))], ("to", OnnxDataType.Int64));
            head = g.Node("Slice", [head, g.Ints([0L], 1), longest, g.Ints([1L], 1)]);
        }
        var logits = g.Node("Add", [head, g.Floats(bias, bias.Length)]);
        if (float16Logits) g.NodeTo("Cast", [logits], ["logits"], ("to", OnnxDataType.Float16));
        else g.NodeTo("Identity", [logits], ["logits"]);
        if (float16Logits) g.NodeTo("Cast", [lengths], ["token_num"], ("to", OnnxDataType.Int64));
        else g.NodeTo("Identity", [lengths], ["token_num"]);
        g.OutputNamed("logits", float16Logits ? OnnxDataType.Float16 : OnnxDataType.Float,
            "d0", trimToLongest ? "logits_length" : "d1", bias.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        g.Output("token_num", float16Logits ? OnnxDataType.Int64 : OnnxDataType.Int32, -1);
        return g.ToBytes();
    }

    /// <summary>
    /// A model with a speech front end's cost (for <c>workers-bench pipeline</c>): <c>waveform</c>
    /// [B, T] → a strided convolution of <paramref name="channels"/> filters of 400 samples every
    /// 160 (25 ms frames every 10 ms), ReLU, and the mean over frames → <c>features</c> [B, channels].
    /// The weights are fixed pseudo-random numbers. It has no lengths input.
    /// </summary>
    public static byte[] ConvFeatures(int channels = 64)
    {
        var g = new OnnxGraphWriter();
        var w = g.Input("waveform", OnnxDataType.Float, -1, -1);
        var x = g.Node("Unsqueeze", [w, g.Ints([1L], 1)]);
        var rng = new Random(7);
        var weights = new float[channels * 400];
        for (var i = 0; i < weights.Length; i++) weights[i] = (float)(rng.NextDouble() - 0.5) * 0.1f;
        var conv = g.Node("Conv", [x, g.Floats(weights, channels, 1, 400)], ("strides", new long[] { 160 }));
        // Opset 17: ReduceMean takes its axes as an attribute (an input only from opset 18).
        g.NodeTo("ReduceMean", [g.Node("Relu", [conv])], ["features"], ("axes", new long[] { 2 }), ("keepdims", 0L));
        g.Output("features", OnnxDataType.Float, -1, channels);
        return g.ToBytes();
    }

    /// <summary>A float [B, T] mask, 1 where the position along <paramref name="axis"/> is below the row's length.</summary>
    public static string MaskFromLengths(OnnxGraphWriter g, string input, string lengths, int axis)
    {
        var t = g.Node("Gather", [g.Node("Shape", [input]), g.Ints([(long)axis])], ("axis", 0L));
        var positions = g.Node("Range", [g.Ints([0L]), t, g.Ints([1L])]);
        var below = g.Node("Less", [positions, g.Node("Unsqueeze", [lengths, g.Ints([1L], 1)])]);
        return g.Node("Cast", [below], ("to", OnnxDataType.Float));
    }
}
