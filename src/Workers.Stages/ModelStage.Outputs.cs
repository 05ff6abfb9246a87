using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Workers.Stages;

/// <summary>A stage's outputs, read back from each run: vectors averaged over a segment's pieces, text decoded greedily.</summary>
public sealed partial class ModelStage
{
    /// <summary>Adds each row's outputs to its segment: vectors weighted by the piece's length, text as the piece's tokens.</summary>
    private void Collect(StagePiece[] batch, IReadOnlyList<OrtValue> values, IReadOnlyList<long[]> shapes, IReadOnlyList<TensorElementType> types, Accumulator acc)
    {
        for (var k = 0; k < _kept.Length; k++)
        {
            var kept = _kept[k];
            var value = values[kept.Fetch];
            var dims = shapes[kept.Fetch];
            var half = types[kept.Fetch] == TensorElementType.Float16;
            if (kept.Tokens is not null)
            {
                CollectText(batch, k, kept, value, dims, values[kept.TokenNumFetch], types[kept.TokenNumFetch] == TensorElementType.Int64, half, acc);
                continue;
            }
            var d = dims.Length == 2 ? (int)dims[1] : 1;
            for (var r = 0; r < batch.Length; r++)
            {
                var p = batch[r];
                var row = (acc.Sums[p.Segment] ??= new double[_kept.Length][])[k] ??= new double[d];
                if (half)
                {
                    var span = value.GetTensorDataAsSpan<Float16>().Slice(r * d, d);
                    for (var j = 0; j < d; j++) row[j] += (float)span[j] * p.Length;
                }
                else
                {
                    var span = value.GetTensorDataAsSpan<float>().Slice(r * d, d);
                    for (var j = 0; j < d; j++) row[j] += span[j] * (double)p.Length;
                }
            }
        }
    }

    /// <summary>Greedy decoding: per row, the argmax token of each of its first token-count frames (the first
    /// maximum on ties, as numpy's argmax), without the dropped ones.</summary>
    private void CollectText(StagePiece[] batch, int k, KeptOutput kept, OrtValue logits, long[] dims, OrtValue tokenNum, bool counts64, bool half, Accumulator acc)
    {
        var frames = (int)dims[1];
        var vocabulary = (int)dims[2];
        if (vocabulary != kept.Tokens!.Count)
            throw new StageConfigurationException($"stage '{_o.Name}', model '{_o.Model}': output '{kept.Options.Name}' gave {vocabulary} logits per frame but the token list {kept.Options.Tokens!.File} has {kept.Tokens.Count} tokens; use the tokens file shipped with this model");
        for (var r = 0; r < batch.Length; r++)
        {
            var count = counts64 ? tokenNum.GetTensorDataAsSpan<long>()[r] : tokenNum.GetTensorDataAsSpan<int>()[r];
            var n = (int)Math.Clamp(count, 0, frames);
            var tokens = new List<string>(n);
            for (var t = 0; t < n; t++)
            {
                var at = (r * frames + t) * vocabulary;
                var best = 0;
                if (half)
                {
                    var row = logits.GetTensorDataAsSpan<Float16>().Slice(at, vocabulary);
                    var max = (float)row[0];
                    for (var v = 1; v < vocabulary; v++)
                        if ((float)row[v] > max) { max = (float)row[v]; best = v; }
                }
                else
                {
                    var row = logits.GetTensorDataAsSpan<float>().Slice(at, vocabulary);
                    var max = row[0];
                    for (var v = 1; v < vocabulary; v++)
                        if (row[v] > max) { max = row[v]; best = v; }
                }
                if (!kept.Drop!.Contains(best)) tokens.Add(kept.Tokens[best]);
            }
            var p = batch[r];
            ((acc.Texts[p.Segment] ??= new List<(int, List<string>)>?[_kept.Length])[k] ??= []).Add((p.Offset, tokens));
        }
    }

    /// <summary>A kept output: its index in the fetched outputs, and for text its token count's index, tokens and dropped ids.</summary>
    private sealed record KeptOutput(StageOutputOptions Options, int Fetch, int TokenNumFetch, TokenList? Tokens, HashSet<int>? Drop);

    /// <summary>Per segment: sums of its pieces' vectors weighted by length, the weights, and its pieces' tokens per text output.</summary>
    private sealed class Accumulator(int segments, int outputs)
    {
        public readonly double[][][] Sums = new double[segments][][];
        public readonly double[] Weights = new double[segments];
        public readonly List<(int Offset, List<string> Tokens)>?[]?[] Texts = new List<(int, List<string>)>?[segments][];

        public StageResult[] Results(IReadOnlyList<StageSegment> list, KeptOutput[] kept)
        {
            var results = new StageResult[list.Count];
            var anyText = kept.Any(k => k.Tokens is not null);
            for (var i = 0; i < list.Count; i++)
            {
                var values = new float[outputs][];
                var texts = anyText ? new string?[outputs] : null;
                for (var o = 0; o < outputs; o++)
                {
                    if (kept[o].Tokens is not null)
                    {
                        values[o] = [];
                        // A cut segment's pieces are decoded apart; their tokens are joined in order, then made one sentence.
                        var pieces = Texts[i]?[o] ?? [];
                        texts![o] = FunAsrText.Join([.. pieces.OrderBy(p => p.Offset).SelectMany(p => p.Tokens)]);
                        continue;
                    }
                    var s = Sums[i]?[o] ?? [];
                    values[o] = new float[s.Length];
                    for (var d = 0; d < s.Length; d++) values[o][d] = (float)(s[d] / Weights[i]);
                }
                results[i] = new StageResult(list[i].Id, values, texts);
            }
            return results;
        }
    }
}
