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
                    _results.Add(new SegmentStageOutput(seg.FileIndex, seg.StartSeconds, stage.Name, stage.FormatResult(outputs[i])));
                }
            }
        }
        _held.Clear();
        _heldSeconds = 0;
    }
}
