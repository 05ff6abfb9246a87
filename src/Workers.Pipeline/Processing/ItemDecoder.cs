using System.Buffers;
using System.Diagnostics;
using Workers.Audio;

namespace Workers.Pipeline.Processing;

/// <summary>One item to decode: the file and the range of it to read (seconds, already widened by the lead-in),
/// and the corpus root the opened file must lie under (null: not confined).</summary>
internal readonly record struct DecodeRequest(string FullPath, double ReadStartSeconds, double EndSeconds, long ExpectedSamples, string? CorpusRoot = null);

/// <summary>When <see cref="ItemDecoder.TryTake"/> waits for a decode to finish.</summary>
internal enum DecodeWait
{
    /// <summary>Never: take what is finished.</summary>
    Never,

    /// <summary>While an item is being decoded, or one waits that the budget lets start.</summary>
    WhileDecoding,

    /// <summary>Until a decode finishes (the caller knows one will).</summary>
    Always,
}

/// <summary>A finished decode: the audio, or why it could not be decoded (the decoder's own exception).</summary>
internal readonly record struct DecodeResult(int Index, DecodedAudio? Audio, Exception? Error);

/// <summary>
/// The decode stage of a shard: <see cref="DecodeAheadOptions.DecoderThreads"/> threads take
/// submitted items in order, decode each once into a <see cref="DecodedAudio"/> in the shard's
/// memory or in the shard's temp folder, and hand it over (<see cref="TryTake"/>) while the caller's
/// thread runs inference on the items before. Decoded audio held (handed over or not, until
/// <see cref="Release"/>) is kept within <see cref="DecodeAheadOptions.MaxDecodedMb"/>; an item goes
/// to memory when it fits what is left of <see cref="DecodeAheadOptions.MaxInMemoryMb"/>, else to a file.
/// A thread takes the next items together, up to <see cref="DecodeAheadOptions.GroupSeconds"/> of audio, and
/// the ones ffmpeg decodes are decoded by one ffmpeg process (<see cref="AudioDecoder.OpenGroup"/>); an item the
/// group gives back (a bad file among them, a hung ffmpeg) is decoded alone, with the error it gives alone.
/// </summary>
/// <remarks>
/// One lock guards the queues and the byte count; decoders do their I/O outside it. A decoder
/// reserves an item's expected size before starting it and settles the difference when done, so
/// the budget holds while several decode at once. Errors are results, never thrown here: the
/// caller decides whether to retry (<see cref="Submit"/> again) or record a failed item.
/// Disposing stops the decoders (each checks between blocks; a hung ffmpeg is bounded by its
/// read timeout) and deletes every decoded file not released.
/// </remarks>
internal sealed class ItemDecoder : IDisposable
{
    private readonly IReadOnlyList<DecodeRequest> _items;
    private readonly AudioDecoderOptions _decoder;
    private readonly string _folder;
    private readonly long _maxBytes;
    private readonly long _maxMemoryBytes;
    private readonly DecodeAheadOptions _options;
    private readonly object _lock = new();
    private readonly Queue<int> _todo = new();
    private readonly Queue<DecodeResult> _done = new();
    private readonly HashSet<DecodedAudio> _held = [];
    private readonly Thread[] _threads;
    private readonly CancellationTokenSource _stop = new();
    private long _heldBytes;
    private long _memoryBytes; // the part of _heldBytes held in memory
    private int _inFlight;
    private int _attempt;
    private bool _disposed;

    public ItemDecoder(IReadOnlyList<DecodeRequest> items, DecodeAheadOptions options, AudioDecoderOptions decoder, string folder)
    {
        _items = items;
        _decoder = decoder;
        _folder = folder;
        _maxBytes = options.MaxDecodedMb * 1024 * 1024;
        _maxMemoryBytes = options.MaxInMemoryMb * 1024 * 1024;
        _options = options;
        _threads = new Thread[Math.Min(options.DecoderThreads, Math.Max(1, items.Count))];
        for (int i = 0; i < _threads.Length; i++)
        {
            _threads[i] = new Thread(Run) { IsBackground = true, Name = $"decode-{i}" };
            _threads[i].Start();
        }
    }

    /// <summary>Bytes of decoded audio held now (reserved for decodes in flight included).</summary>
    public long HeldBytes { get { lock (_lock) return _heldBytes; } }

    /// <summary>Most bytes held at once.</summary>
    public long PeakHeldBytes { get; private set; }

    /// <summary>Most bytes held in memory at once (reserved for decodes in flight included).</summary>
    public long PeakMemoryBytes { get; private set; }

    /// <summary>Queues items for decoding (again, after a transient failure), all at once: a decoder that wakes
    /// takes its group from all of them, not from the first alone.</summary>
    public void Submit(params ReadOnlySpan<int> indexes)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var index in indexes) _todo.Enqueue(index);
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>
    /// The next finished decode, in the order they finished. <paramref name="wait"/> says whether to
    /// block until one is there; <paramref name="ct"/> cancels the wait.
    /// </summary>
    public bool TryTake(out DecodeResult result, DecodeWait wait, CancellationToken ct)
    {
        using var wake = wait != DecodeWait.Never ? ct.Register(() => { lock (_lock) Monitor.PulseAll(_lock); }) : default;
        lock (_lock)
        {
            while (_done.Count == 0)
            {
                if (wait == DecodeWait.Never || (wait == DecodeWait.WhileDecoding && _inFlight == 0 && !CanStartLocked()))
                {
                    result = default;
                    return false;
                }
                ct.ThrowIfCancellationRequested();
                Monitor.Wait(_lock);
            }
            result = _done.Dequeue();
            return true;
        }
    }

    /// <summary>The caller is done with <paramref name="audio"/>: its file is deleted and its bytes freed for the decoders.</summary>
    public void Release(DecodedAudio audio)
    {
        lock (_lock)
        {
            if (!_held.Remove(audio)) return;
            _heldBytes -= audio.Bytes;
            if (audio.InMemory) _memoryBytes -= audio.Bytes;
            Monitor.PulseAll(_lock);
        }
        audio.Dispose();
    }

    // One item a decoder thread took: its index, the bytes reserved for it, its attempt number and where it goes.
    private readonly record struct Slot(int Index, long Reserved, int Attempt, bool InMemory);

    private void Run()
    {
        var block = ArrayPool<float>.Shared.Rent(DecodedAudio.BlockSamples);
        var group = new List<Slot>();
        try
        {
            while (TryNext(group))
            {
                // A group of one is opened alone, streamed; a larger one by one ffmpeg (AudioDecoder.OpenGroup).
                var sources = new IAudioSource?[group.Count];
                Exception? error = null;
                if (group.Count > 1)
                {
                    try { sources = AudioDecoder.OpenGroup([.. group.Select(g => Range(_items[g.Index]))], _decoder, _folder, _stop.Token); }
                    catch (OperationCanceledException e) { error = e; } // stopping: the results are discarded
                    catch (Exception) { } // whatever went wrong with the group, each item alone says what it is
                    Interlocked.Add(ref _groupedItems, sources.Count(x => x is not null));
                }
                // Each item handed over as soon as it is read; one the group gave back is decoded alone, as it would be without groups.
                for (var k = 0; k < group.Count; k++)
                {
                    var item = _items[group[k].Index];
                    var source = sources[k];
                    Complete(group[k], error is not null ? new DecodeResult(group[k].Index, null, error)
                        : Decode(group[k], () => source ?? AudioDecoder.Open(item.FullPath, item.ReadStartSeconds, item.EndSeconds, _decoder, item.CorpusRoot), block));
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(block);
        }
    }

    private static AudioRange Range(DecodeRequest item) => new(item.FullPath, item.ReadStartSeconds, item.EndSeconds, item.CorpusRoot);

    /// <summary>Items whose decode came from a group's ffmpeg run or its direct reads, over this decoder's life (<see cref="DecodeAheadOptions.GroupSeconds"/>).</summary>
    public int GroupedItems => Volatile.Read(ref _groupedItems);

    private int _groupedItems;

    // Settles the item's reservation against what it decoded to and hands the result over.
    private void Complete(Slot slot, DecodeResult result)
    {
        lock (_lock)
        {
            _inFlight--;
            _heldBytes += (result.Audio?.Bytes ?? 0) - slot.Reserved;
            if (slot.InMemory) _memoryBytes += (result.Audio?.Bytes ?? 0) - slot.Reserved;
            if (result.Audio is { } a)
            {
                if (_disposed)
                {
                    _heldBytes -= a.Bytes;
                    if (slot.InMemory) _memoryBytes -= a.Bytes;
                    a.Dispose();
                    return;
                }
                _held.Add(a);
            }
            _done.Enqueue(result);
            Monitor.PulseAll(_lock);
        }
    }

    // Waits for an item and for room in the budget, then takes it and, to make a group, the next ones while they
    // fit GroupSeconds, MaxGroupItems, this thread's share of what is left and the budget; reserves each one's
    // expected bytes, in memory when they fit there.
    private bool TryNext(List<Slot> group)
    {
        group.Clear();
        lock (_lock)
        {
            while (!_disposed && !CanStartLocked()) Monitor.Wait(_lock);
            if (_disposed) return false;
            var share = (_todo.Count + _threads.Length - 1) / _threads.Length;
            var seconds = 0.0;
            do
            {
                long need = NeedLocked();
                var itemSeconds = SecondsLocked();
                seconds += itemSeconds;
                var index = _todo.Dequeue();
                // An item of unknown length (need 0) goes to a file: memory is only for what the budget can count.
                var inMemory = need > 0 && _memoryBytes + need <= _maxMemoryBytes;
                group.Add(new Slot(index, need, ++_attempt, inMemory));
                _inFlight++;
                _heldBytes += need;
                PeakHeldBytes = Math.Max(PeakHeldBytes, _heldBytes);
                if (inMemory)
                {
                    _memoryBytes += need;
                    PeakMemoryBytes = Math.Max(PeakMemoryBytes, _memoryBytes);
                }
                if (!DecodeAheadOptions.IsGroupable(itemSeconds, _items[index].FullPath, _items[index].ReadStartSeconds)) break; // unknown length, or long: alone
            }
            while (_todo.Count > 0 && group.Count < share && _heldBytes + NeedLocked() <= _maxBytes
                   && _options.Joins(group.Count, seconds, SecondsLocked(), NextLocked().FullPath, NextLocked().ReadStartSeconds));
            return true;
        }
    }

    private DecodeRequest NextLocked() => _items[_todo.Peek()];

    // The next item's expected length (0: unknown).
    private double SecondsLocked() => Math.Max(0, NextLocked().ExpectedSamples) / (double)AudioDecoder.SampleRate;

    private long NeedLocked() => Math.Max(0, NextLocked().ExpectedSamples) * sizeof(float);

    // The next item fits the budget, or nothing is held (an item larger than the budget goes alone).
    private bool CanStartLocked() => _todo.Count > 0 && (_heldBytes == 0 || _heldBytes + NeedLocked() <= _maxBytes);

    private DecodeResult Decode(Slot slot, Func<IAudioSource> open, float[] block)
    {
        var index = slot.Index;
        DecodedAudio? audio = null;
        try
        {
            // The one place a shard item's file is opened for processing: non-blocking, regular files only,
            // confined to the corpus root, every read bounded by Audio:ReadTimeout (CorpusFileOpener).
            using var source = open();
            var name = $"decoded-{index}-{slot.Attempt}.f32";
            audio = slot.InMemory ? DecodedAudio.CreateInMemory(name) : DecodedAudio.Create(Path.Combine(_folder, name));
            while (true)
            {
                if (_stop.IsCancellationRequested) throw new OperationCanceledException(_stop.Token);
                if (audio.InMemory)
                {
                    // Straight into the item's own block: no copy between the decoder and the memory the batcher reads.
                    int got = source.Read(audio.AppendSpan());
                    if (got == 0) break;
                    audio.Advance(got);
                    continue;
                }
                int n = source.Read(block.AsSpan(0, DecodedAudio.BlockSamples));
                if (n == 0) break;
                audio.Append(block.AsSpan(0, n));
            }
            audio.Seal();
            // The one place an item's decoded length becomes known (audio.Samples, against item.ExpectedSamples).
            return new DecodeResult(index, audio, null);
        }
        catch (Exception e)
        {
            audio?.Dispose();
            return new DecodeResult(index, null, e);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            Monitor.PulseAll(_lock);
        }
        _stop.Cancel();
        foreach (var t in _threads) t.Join();
        _stop.Dispose();
        lock (_lock)
        {
            foreach (var a in _held) a.Dispose();
            _held.Clear();
            while (_done.TryDequeue(out var r)) r.Audio?.Dispose();
            Debug.Assert(_heldBytes >= 0);
        }
    }
}
