using Workers.Audio;
using Workers.Onnx;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Processing;

/// <summary>One range of one file to segment (seconds from the file's start). <paramref name="CorpusRoot"/>:
/// the corpus root recorded at enqueue, which the opened file must still lie under (null: not confined).
/// <paramref name="FileSeconds"/>: the file's duration at enqueue, so its last item can tell that it grew
/// (null: unknown). See <see cref="ItemLengthCheck"/>.</summary>
public readonly record struct ProcessItem(int FileIndex, string FullPath, double StartSeconds, double EndSeconds, string? CorpusRoot = null, double? FileSeconds = null);

/// <summary>A speech segment in file time.</summary>
public readonly record struct FoundSegment(int FileIndex, double StartSeconds, double EndSeconds);

/// <summary>An item that could not be processed, with the decoder's reason; the shard went on.</summary>
public readonly record struct ItemFailure(int FileIndex, double StartSeconds, double EndSeconds, string Error);

public sealed record ShardOutput(IReadOnlyList<FoundSegment> Segments, IReadOnlyList<ItemFailure> Failures, double AudioSeconds)
{
    /// <summary>Items processed with something to say (a file longer than enqueued); see <see cref="ItemLengthCheck"/>.</summary>
    public IReadOnlyList<ItemWarning> Warnings { get; init; } = [];

    /// <summary>How many times inference ran out of memory and the batch was halved (0: never).</summary>
    public int OomRetries { get; init; }

    /// <summary>The batcher's <see cref="VadBatcher.MaxRunSize"/> when the shard finished: its batch
    /// capacity unless <see cref="OomRetries"/> lowered it.</summary>
    public int FinalRunSize { get; init; }

    /// <summary>The batcher's model calls for this shard (<see cref="VadBatcher.ModelCalls"/>).</summary>
    public long ModelCalls { get; init; }

    /// <summary>Rows those calls scored, the warm-ups of split items included (<see cref="VadBatcher.ModelRows"/>).</summary>
    public long ModelRows { get; init; }

    /// <summary>The rows long items were split to fill (<see cref="ShardProcessor.SplitRows"/>).</summary>
    public int SplitRows { get; init; }

    /// <summary>Rows a model call on the mean (0 when nothing was scored): how full the batch ran. On a GPU a thin batch
    /// costs about what a full one does, so this is the figure that says a shard was too small to feed it.</summary>
    public double RowsPerCall => ModelCalls == 0 ? 0 : (double)ModelRows / ModelCalls;
}

/// <summary>
/// Segments every item of a shard with one batched VAD. Two stages overlap: an
/// <see cref="ItemDecoder"/> decodes each item once, ahead, on
/// <see cref="DecodeAheadOptions.DecoderThreads"/> threads of its own, into memory or the shard's temp folder;
/// this thread admits every decoded item to the batcher and runs inference, so a shard of many
/// short files and a shard holding one 30-minute range both fill the batch, and every sub-stream of
/// a long item reads the one decode. A file that cannot be decoded becomes an
/// <see cref="ItemFailure"/>, never a crash; a transient decode failure is decoded again
/// (<see cref="MaxItemAttempts"/>). If inference runs out of memory (the model adapter throws
/// <see cref="OnnxOutOfMemoryException"/>, or the runtime <see cref="OutOfMemoryException"/>),
/// <see cref="VadBatcher.MaxRunSize"/> is halved and the step retried (the batcher loses nothing
/// when the model throws); the lower size is kept for the rest of the shard. Only a batch of one
/// running out of memory fails the shard: that exception propagates, as does any other exception
/// from inference.
/// </summary>
/// <remarks>Long items are split no further than the shard needs to fill <see cref="SplitRows"/> batch rows
/// (<see cref="VadOptions.SplitRows"/>): each sub-stream but the first re-scores a warm-up.</remarks>
public sealed partial class ShardProcessor(VadBatcher batcher, VadOptions options, AudioDecoderOptions? decoder = null, DecodeAheadOptions? decodeAhead = null, int? splitRows = null)
{
    /// <summary>The rows a shard's long items are split to fill: <see cref="VadOptions.SplitRows"/>, else the
    /// caller's default (a CPU worker's), else the batch capacity.</summary>
    public int SplitRows { get; } = Math.Clamp(options.SplitRows ?? splitRows ?? batcher.BatchCapacity, 1, batcher.BatchCapacity);

    private readonly AudioDecoderOptions _decoder = decoder ?? AudioDecoderOptions.Default;
    private readonly DecodeAheadOptions _decodeAhead = decodeAhead ?? DecodeAheadOptions.Default;

    /// <param name="items">The shard's items.</param>
    /// <param name="progress">Called from this thread with the audio seconds of items finished so far.</param>
    /// <param name="ct">Stops processing (the decoders too); throws <see cref="OperationCanceledException"/>.</param>
    /// <param name="tempFolder">Where decoded audio is kept (the shard's own temp folder, which must exist);
    /// null: a folder of its own under the system temp path, removed on return.</param>
    /// <param name="speech">Given each segment found and its samples (16 kHz mono, read from the item's one
    /// decode before it is released), on this thread, as each item finishes: what model stages run on,
    /// so they never decode a file again. Null: segments only.</param>
    public ShardOutput Process(IReadOnlyList<ProcessItem> items, Action<double>? progress, CancellationToken ct, string? tempFolder = null,
        Action<FoundSegment, float[]>? speech = null)
    {
        var sr = options.SampleRate;
        var readStarts = new double[items.Count];
        var requests = new DecodeRequest[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            var it = items[i];
            readStarts[i] = LeadInStart(it.StartSeconds);
            // A file's last item reads a little past its end, to notice a file that grew (ItemLengthCheck).
            var readEnd = ItemLengthCheck.ReadEnd(it);
            requests[i] = new DecodeRequest(it.FullPath, readStarts[i], readEnd, (long)Math.Round((readEnd - readStarts[i]) * sr), it.CorpusRoot);
        }

        batcher.SubStreamWindows = SubStreamWindows(requests);
        var ownFolder = tempFolder is null ? Directory.CreateTempSubdirectory("workers-decode-").FullName : null;
        try
        {
            using var decodes = new ItemDecoder(requests, _decodeAhead, _decoder, tempFolder ?? ownFolder!);
            decodes.Submit([.. Enumerable.Range(0, items.Count)]);
            var output = Run(items, requests, readStarts, decodes, progress, speech, ct);
            PeakDecodedBytes = Math.Max(PeakDecodedBytes, decodes.PeakHeldBytes);
            PeakInMemoryBytes = Math.Max(PeakInMemoryBytes, decodes.PeakMemoryBytes);
            GroupedItems += decodes.GroupedItems;
            return output;
        }
        finally
        {
            if (ownFolder is not null) Directory.Delete(ownFolder, recursive: true);
        }
    }

    private ShardOutput Run(IReadOnlyList<ProcessItem> items, DecodeRequest[] requests, double[] readStarts, ItemDecoder decodes, Action<double>? progress,
        Action<FoundSegment, float[]>? speech, CancellationToken ct)
    {
        var sr = options.SampleRate;
        var segments = new List<FoundSegment>();
        var failures = new List<ItemFailure>();
        var warnings = new List<ItemWarning>();
        var completed = new List<VadItemResult>();
        var decoded = new DecodedAudio?[items.Count];
        var itemAttempts = new int[items.Count];
        var open = items.Count; // items without their final result yet
        double done = 0;
        var oomRetries = 0;
        long callsBefore = batcher.ModelCalls, rowsBefore = batcher.ModelRows;

        // An item's final failure, or a retry when the decoder may do better next time.
        void Failed(int index, Exception error)
        {
            if (IsTransientDecodeError(error) && ++itemAttempts[index] < MaxItemAttempts)
            {
                // A decoder that crashed or an I/O hiccup: decode the item again from its start.
                TransientRetries++;
                decodes.Submit(index);
                return;
            }
            var it = items[index];
            failures.Add(new ItemFailure(it.FileIndex, it.StartSeconds, it.EndSeconds, Describe(error)));
            done += it.EndSeconds - it.StartSeconds;
            open--;
        }

        DecodeWait WaitFor() =>
            open == 0 ? DecodeWait.Never // the last item just failed to decode: nothing more will come
            : batcher.IsIdle ? DecodeWait.Always
            : batcher.ActiveStreams + batcher.PendingStreams < batcher.MaxRunSize ? DecodeWait.WhileDecoding
            : DecodeWait.Never;

        while (open > 0)
        {
            ct.ThrowIfCancellationRequested();
            // Admit every item decoded so far. Wait for the decoders when inference has nothing to do,
            // and also while the batch is not full and more is being decoded: a thin batch costs more
            // per window, and the core it would take is better spent decoding (the decoder may share it).
            while (decodes.TryTake(out var d, WaitFor(), ct))
            {
                if (d.Error is not null) { Failed(d.Index, d.Error); continue; }
                decoded[d.Index] = d.Audio;
                batcher.Enqueue(new VadItem(d.Index, d.Audio!, requests[d.Index].ExpectedSamples));
            }
            if (batcher.IsIdle) { progress?.Invoke(done); continue; }

            try
            {
                batcher.Step(completed);
            }
            catch (Exception e) when (batcher.MaxRunSize > 1 && e is OnnxOutOfMemoryException or OutOfMemoryException)
            {
                // The windows read for this step are kept by the batcher; the next Step scores them in smaller calls.
                batcher.MaxRunSize /= 2;
                oomRetries++;
                continue;
            }
            if (completed.Count == 0) continue;
            foreach (var r in completed)
            {
                var index = (int)r.ItemId;
                var it = items[index];
                var audio = decoded[index]!;
                decoded[index] = null;
                if (r.Error is not null)
                {
                    decodes.Release(audio);
                    Failed(index, r.Error);
                    continue;
                }
                done += it.EndSeconds - it.StartSeconds;
                open--;
                // Decoded length against enqueued: a shorter file's missing range is a failure, a longer one a warning.
                var (shortfall, grew) = ItemLengthCheck.Check(it, readStarts[index], r.TotalSamples, sr);
                if (shortfall is { } missing) failures.Add(missing);
                if (grew is { } warning) warnings.Add(warning);
                var first = segments.Count;
                foreach (var s in r.Segments)
                {
                    // Speech found in the lead-in belongs to the previous range (another shard): clip to ours.
                    var start = Math.Max(it.StartSeconds, readStarts[index] + (double)s.Start / sr);
                    var end = Math.Min(it.EndSeconds, readStarts[index] + (double)s.End / sr);
                    if (end > start) segments.Add(new FoundSegment(it.FileIndex, start, end));
                }
                if (speech is not null)
                    for (var k = first; k < segments.Count; k++) speech(segments[k], ReadSpeech(audio, readStarts[index], segments[k]));
                decodes.Release(audio); // every sub-stream has ended and the speech is read: the decode is no longer needed
            }
            completed.Clear();
            progress?.Invoke(done);
        }
        segments.Sort((a, b) => a.FileIndex != b.FileIndex ? a.FileIndex.CompareTo(b.FileIndex) : a.StartSeconds.CompareTo(b.StartSeconds));
        return new ShardOutput(segments, failures, done)
        {
            OomRetries = oomRetries, FinalRunSize = batcher.MaxRunSize, Warnings = warnings, ModelCalls = batcher.ModelCalls - callsBefore, ModelRows = batcher.ModelRows - rowsBefore, SplitRows = SplitRows,
        };
    }

    /// <summary>
    /// Windows per sub-stream for this shard: the shard's audio spread over <see cref="SplitRows"/> rows,
    /// never shorter than <see cref="VadOptions.SubStreamSeconds"/>. A 30-minute item on 64 rows keeps
    /// the 60 s floor (30 sub-streams); on 16 rows it runs as 16 sub-streams of 113 s, half the warm-ups.
    /// </summary>
    private long? SubStreamWindows(DecodeRequest[] requests)
    {
        if (batcher.Planner.SubStreamWindows is not { } floor) return null;
        long samples = 0;
        foreach (var r in requests) samples += Math.Max(0, r.ExpectedSamples);
        long windows = (samples + options.WindowSamples - 1) / options.WindowSamples;
        return Math.Max(floor, (windows + SplitRows - 1) / SplitRows);
    }

    /// <summary>
    /// A segment's samples from its item's decode (which starts at <paramref name="readStart"/>): from
    /// <c>round(start * rate)</c> to <c>round(end * rate)</c> in file samples, at least one; a segment
    /// ending on the final partial window gets the samples there are.
    /// </summary>
    private float[] ReadSpeech(DecodedAudio audio, double readStart, FoundSegment segment)
    {
        var sr = options.SampleRate;
        long origin = (long)Math.Round(readStart * sr);
        long from = Math.Min(audio.Samples, Math.Max(0, (long)Math.Round(segment.StartSeconds * sr) - origin));
        long to = Math.Max(from + 1, (long)Math.Round(segment.EndSeconds * sr) - origin);
        var samples = new float[checked((int)Math.Max(1, Math.Min(to, audio.Samples) - from))];
        var reader = audio.OpenAt(from);
        try
        {
            for (int filled = 0, n; filled < samples.Length && (n = reader.Read(samples.AsSpan(filled))) > 0; filled += n) { }
        }
        finally
        {
            (reader as IDisposable)?.Dispose();
        }
        return samples;
    }

    /// <summary>Most decoded audio (bytes) this processor's shards held at once, in memory and in their temp folders.</summary>
    public long PeakDecodedBytes { get; private set; }

    /// <summary>The part of <see cref="PeakDecodedBytes"/> held in memory at most (<see cref="DecodeAheadOptions.MaxInMemoryMb"/>).</summary>
    public long PeakInMemoryBytes { get; private set; }

    /// <summary>Items decoded in a group (<see cref="DecodeAheadOptions.GroupSeconds"/>) rather than alone, over this processor's life.</summary>
    public int GroupedItems { get; private set; }

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

    /// <summary>Attempts per item when decoding fails transiently.</summary>
    public const int MaxItemAttempts = 3;

    /// <summary>Items decoded again after a transient decode failure, over this processor's life.</summary>
    public int TransientRetries { get; private set; }

    /// <summary>
    /// Worth another read: I/O errors other than a missing file or folder, a decoder that timed out,
    /// and an ffmpeg that died of a signal (exit code 128 + signal: killed, crashed). A file whose
    /// content is bad fails the same way every time and is not retried.
    /// </summary>
    public static bool IsTransientDecodeError(Exception e) =>
        DecoderError(e) switch
        {
            FileNotFoundException or DirectoryNotFoundException or CorpusFileRejectedException => false,
            IOException or TimeoutException => true,
            // A signal (128 + its number), or ffmpeg's own 255 after it caught SIGINT/SIGTERM.
            DecoderExitException x => x.Signal is not null || x.ExitCode >= 128,
            _ => false,
        };

    private static string Describe(Exception e) => DecoderError(e) is CorpusFileRejectedException r ? r.Reason : FileAccessErrors.Describe(DecoderError(e));

    /// <summary>The decoder's own exception, unwrapped from an <see cref="AudioReadException"/>.</summary>
    private static Exception DecoderError(Exception e) => e is AudioReadException { InnerException: { } i } ? i : e;
}
