using System.Text;
using System.Text.Json;
using Workers.Audio;
using Workers.Pipeline.Processing;
using Workers.Stages;

namespace Workers.Pipeline.Stages;

/// <summary>One model stage's result for one speech segment, as stored (<c>segment_results</c>).</summary>
public readonly record struct SegmentStageOutput(int FileIndex, double StartSeconds, string Stage, string ResultJson);

/// <summary>
/// Runs a pipeline's model stages over the speech segments the VAD finds in one shard. The segments'
/// samples come from the items' one decode (<see cref="ShardProcessor"/>'s speech callback, as each item
/// finishes), so no file is opened or decoded a second time. They are collected until
/// <c>bufferSeconds</c> of speech are held; then every stage runs over them (batched by seconds across
/// items and files, see <see cref="ModelStage"/>) and the audio is dropped. Memory is bounded by
/// <c>bufferSeconds</c> of 16 kHz float audio (600 s: 38 MB). One runner per shard, one thread.
/// </summary>
public sealed class SegmentStageRunner(IReadOnlyList<ModelStage> stages, double bufferSeconds = 600)
{
    private readonly List<(FoundSegment Segment, float[] Samples)> _held = [];
    private readonly List<SegmentStageOutput> _results = [];
    private double _heldSeconds;

    public IReadOnlyList<ModelStage> Stages => stages;

    /// <summary>One segment's speech; the stages run once <c>bufferSeconds</c> are held.</summary>
    public void Add(FoundSegment segment, float[] samples, CancellationToken ct)
    {
        if (stages.Count == 0) return;
        _held.Add((segment, samples));
        _heldSeconds += samples.Length / (double)AudioDecoder.SampleRate;
        if (_heldSeconds >= bufferSeconds) RunStages(ct);
    }

    /// <summary>Runs the stages over what is still held; the results of every stage for every segment added.</summary>
    public List<SegmentStageOutput> Finish(CancellationToken ct)
    {
        RunStages(ct);
        return _results;
    }

    private void RunStages(CancellationToken ct)
    {
        if (_held.Count > 0)
        {
            var input = _held.Select((h, i) => new StageSegment(i, h.Samples)).ToList();
            foreach (var stage in stages)
            {
                ct.ThrowIfCancellationRequested();
                var outputs = stage.Run(input);
                for (var i = 0; i < outputs.Count; i++)
                {
                    var seg = _held[outputs[i].Segment].Segment;
                    _results.Add(new SegmentStageOutput(seg.FileIndex, seg.StartSeconds, stage.Name, StageResultJson.Format(stage.Outputs, outputs[i])));
                }
            }
        }
        _held.Clear();
        _heldSeconds = 0;
    }
}

/// <summary>
/// A stage result as stored and exported: one property per kept output, a vector as an array of
/// numbers (shortest round-trip form), top-k as <c>{"labels": [...], "scores": [...]}</c>,
/// highest first (labels are the output's indices when none are configured).
/// </summary>
public static class StageResultJson
{
    public static string Format(IReadOnlyList<StageOutputOptions> outputs, StageResult result)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            for (var o = 0; o < outputs.Count; o++)
            {
                var values = result.Values[o];
                var keep = outputs[o];
                w.WritePropertyName(keep.Name);
                if (!keep.IsTopK)
                {
                    w.WriteStartArray();
                    foreach (var v in values) WriteNumber(w, v);
                    w.WriteEndArray();
                    continue;
                }
                var order = Enumerable.Range(0, values.Length).OrderByDescending(i => values[i]).ThenBy(i => i).Take(keep.TopK).ToList();
                w.WriteStartObject();
                w.WriteStartArray("labels");
                foreach (var i in order) w.WriteStringValue(i < keep.Labels.Count ? keep.Labels[i] : i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                w.WriteEndArray();
                w.WriteStartArray("scores");
                foreach (var i in order) WriteNumber(w, values[i]);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    // JSON has no NaN or infinity: a model that produces them gets null there, not a broken line.
    private static void WriteNumber(Utf8JsonWriter w, float v)
    {
        if (float.IsFinite(v)) w.WriteNumberValue(v);
        else w.WriteNullValue();
    }
}
