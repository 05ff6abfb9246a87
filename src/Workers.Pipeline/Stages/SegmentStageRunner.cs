using System.Text;
using System.Text.Json;
using Workers.Audio;
using Workers.Pipeline.Processing;
using Workers.Stages;

namespace Workers.Pipeline.Stages;

/// <summary>One model stage's result for one speech segment, as stored (<c>segment_results</c>).</summary>
public readonly record struct SegmentStageOutput(int FileIndex, double StartSeconds, string Stage, string ResultJson);

/// <summary>
/// Runs a pipeline's model stages over the speech segments the VAD found in a shard. Each item's
/// segments are read in one sequential pass over the item's range (the part from its first
/// segment's start to its last one's end; one decoder per item, never one per segment), and
/// collected until <c>bufferSeconds</c> of speech are held; then every stage runs over them
/// (batched by seconds across items and files, see <see cref="ModelStage"/>) and the audio is
/// dropped. Memory is bounded by <c>bufferSeconds</c> of 16 kHz float audio (600 s: 38 MB).
/// </summary>
public sealed class SegmentStageRunner(IReadOnlyList<ModelStage> stages, AudioDecoderOptions? decoder = null, double bufferSeconds = 600)
{
    private readonly AudioDecoderOptions _decoder = decoder ?? AudioDecoderOptions.Default;

    public IReadOnlyList<ModelStage> Stages => stages;

    /// <summary>Results of every stage for every segment; <paramref name="segments"/> lie inside <paramref name="items"/> (as <see cref="ShardProcessor"/> clips them).</summary>
    public List<SegmentStageOutput> Run(IReadOnlyList<ProcessItem> items, IReadOnlyList<FoundSegment> segments, CancellationToken ct)
    {
        var results = new List<SegmentStageOutput>(segments.Count * stages.Count);
        if (stages.Count == 0 || segments.Count == 0) return results;
        var held = new List<(FoundSegment Segment, float[] Samples)>();
        double heldSeconds = 0;
        // Grouped by file once, in start order: each item looks only at its own file's segments (a shard holds
        // thousands of items; filtering every segment for every item was O(items x segments)).
        var byFile = segments.GroupBy(s => s.FileIndex).ToDictionary(g => g.Key, g => g.OrderBy(s => s.StartSeconds).ToList());
        foreach (var item in items)
        {
            if (!byFile.TryGetValue(item.FileIndex, out var ofFile)) continue;
            var mine = ofFile.FindAll(s => s.StartSeconds >= item.StartSeconds - 1e-9 && s.EndSeconds <= item.EndSeconds + 1e-9);
            if (mine.Count == 0) continue;
            ct.ThrowIfCancellationRequested();
            foreach (var (segment, samples) in Read(item, mine))
            {
                held.Add((segment, samples));
                heldSeconds += samples.Length / (double)AudioDecoder.SampleRate;
                if (heldSeconds >= bufferSeconds)
                {
                    RunStages(held, results, ct);
                    held.Clear();
                    heldSeconds = 0;
                }
            }
        }
        RunStages(held, results, ct);
        return results;
    }

    private IEnumerable<(FoundSegment, float[])> Read(ProcessItem item, List<FoundSegment> mine)
    {
        var sr = AudioDecoder.SampleRate;
        var origin = mine[0].StartSeconds;
        using var source = AudioDecoder.Open(item.FullPath, origin, mine[^1].EndSeconds, _decoder, item.CorpusRoot); // confined as the VAD's open is
        var skip = new float[16384];
        long position = 0;
        foreach (var s in mine)
        {
            var from = (long)Math.Round((s.StartSeconds - origin) * sr);
            var to = Math.Max(from + 1, (long)Math.Round((s.EndSeconds - origin) * sr));
            while (position < from)
            {
                var n = source.Read(skip.AsSpan(0, (int)Math.Min(skip.Length, from - position)));
                if (n == 0) throw new EndOfStreamException($"{item.FullPath}: audio ended at {origin + position / (double)sr:0.000} s, before the segment at {s.StartSeconds:0.000} s that the VAD found in it");
                position += n;
            }
            var samples = new float[to - from];
            var filled = 0;
            while (filled < samples.Length)
            {
                var n = source.Read(samples.AsSpan(filled));
                if (n == 0) break; // the file's last samples: a segment may end on the final partial window
                filled += n;
            }
            position += filled;
            yield return (s, filled == samples.Length ? samples : samples[..Math.Max(1, filled)]);
        }
    }

    private void RunStages(List<(FoundSegment Segment, float[] Samples)> held, List<SegmentStageOutput> results, CancellationToken ct)
    {
        if (held.Count == 0) return;
        var input = held.Select((h, i) => new StageSegment(i, h.Samples)).ToList();
        foreach (var stage in stages)
        {
            ct.ThrowIfCancellationRequested();
            var outputs = stage.Run(input);
            for (var i = 0; i < outputs.Count; i++)
            {
                var seg = held[outputs[i].Segment].Segment;
                results.Add(new SegmentStageOutput(seg.FileIndex, seg.StartSeconds, stage.Name, StageResultJson.Format(stage.Outputs, outputs[i])));
            }
        }
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
