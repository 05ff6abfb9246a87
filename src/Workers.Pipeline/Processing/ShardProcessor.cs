using Workers.Audio;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Processing;

/// <summary>One range of one file to segment (seconds from the file's start).</summary>
public readonly record struct ProcessItem(int FileIndex, string FullPath, double StartSeconds, double EndSeconds);

/// <summary>A speech segment in file time.</summary>
public readonly record struct FoundSegment(int FileIndex, double StartSeconds, double EndSeconds);

/// <summary>An item that could not be processed, with the decoder's reason; the shard went on.</summary>
public readonly record struct ItemFailure(int FileIndex, double StartSeconds, double EndSeconds, string Error);

public sealed record ShardOutput(IReadOnlyList<FoundSegment> Segments, IReadOnlyList<ItemFailure> Failures, double AudioSeconds);

/// <summary>
/// Segments every item of a shard with one batched VAD: all items go into the batcher at once, so
/// a shard of many short files and a shard holding one 30-minute range both fill the batch.
/// Decoding runs ahead on the thread pool (<see cref="PrefetchingReader"/>) while this thread runs
/// inference. A file that cannot be decoded becomes an <see cref="ItemFailure"/>, never a crash.
/// </summary>
public sealed class ShardProcessor(VadBatcher batcher, VadOptions options, AudioDecoderOptions? decoder = null)
{
    private readonly AudioDecoderOptions _decoder = decoder ?? AudioDecoderOptions.Default;

    /// <param name="progress">Called from this thread with the audio seconds of items finished so far.</param>
    public ShardOutput Process(IReadOnlyList<ProcessItem> items, Action<double>? progress, CancellationToken ct)
    {
        var sr = options.SampleRate;
        var readStarts = new double[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            var it = items[i];
            readStarts[i] = LeadInStart(it.StartSeconds);
            var expected = (long)Math.Round((it.EndSeconds - readStarts[i]) * sr);
            batcher.Enqueue(new VadItem(i, new AudioItemSource(it.FullPath, readStarts[i], it.EndSeconds, _decoder), expected));
        }

        var segments = new List<FoundSegment>();
        var failures = new List<ItemFailure>();
        var completed = new List<VadItemResult>();
        double done = 0;
        while (!batcher.IsIdle)
        {
            ct.ThrowIfCancellationRequested();
            batcher.Step(completed);
            if (completed.Count == 0) continue;
            foreach (var r in completed)
            {
                var it = items[(int)r.ItemId];
                done += it.EndSeconds - it.StartSeconds;
                if (r.Error is not null)
                {
                    failures.Add(new ItemFailure(it.FileIndex, it.StartSeconds, it.EndSeconds, Describe(r.Error)));
                    continue;
                }
                foreach (var s in r.Segments)
                {
                    // Speech found in the lead-in belongs to the previous range (another shard): clip to ours.
                    var start = Math.Max(it.StartSeconds, readStarts[(int)r.ItemId] + (double)s.Start / sr);
                    var end = Math.Min(it.EndSeconds, readStarts[(int)r.ItemId] + (double)s.End / sr);
                    if (end > start) segments.Add(new FoundSegment(it.FileIndex, start, end));
                }
            }
            completed.Clear();
            progress?.Invoke(done);
        }
        segments.Sort((a, b) => a.FileIndex != b.FileIndex ? a.FileIndex.CompareTo(b.FileIndex) : a.StartSeconds.CompareTo(b.StartSeconds));
        return new ShardOutput(segments, failures, done);
    }

    /// <summary>
    /// Where to start reading a range that begins inside a file (a file cut across shards): on the
    /// file's own 512-sample window grid, <see cref="VadOptions.WarmUpSeconds"/> early. The model
    /// then sees the windows an unsplit run sees, with its recurrent state warmed on the audio
    /// before the cut; segments are clipped to the range, so nothing before the cut is claimed twice.
    /// </summary>
    private double LeadInStart(double start)
    {
        if (start <= 0) return 0;
        var window = options.WindowSamples;
        var startSample = (long)Math.Round(start * options.SampleRate);
        var warmUp = (long)Math.Ceiling(options.WarmUpSeconds * options.SampleRate / window) * window;
        var aligned = startSample / window * window - warmUp;
        return Math.Max(0, aligned) / (double)options.SampleRate;
    }

    private static string Describe(Exception e)
    {
        var inner = e is AudioReadException { InnerException: { } i } ? i : e;
        return inner.Message;
    }
}
