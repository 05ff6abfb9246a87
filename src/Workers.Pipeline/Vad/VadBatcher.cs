using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Workers.Pipeline.Vad;

/// <summary>
/// Runs a VAD model over many streams at once: each <see cref="Step"/> reads one window from
/// every active stream, scores them in one model call, and feeds each probability to its item's
/// <see cref="SpeechSegmenter"/>. Streams that end give their row to the next pending one.
/// </summary>
/// <remarks>
/// <para><b>Rows.</b> The active streams occupy rows 0..<see cref="ActiveStreams"/>-1 of the batch.
/// Row r of the window buffer is <c>[context | window]</c>; after a call its last
/// <c>ContextSamples</c> samples become its context, as upstream's <c>OnnxWrapper</c> keeps
/// <c>x[..., -context_size:]</c>. A stream's model state is slice r of the state buffer
/// (see <see cref="IVadModel"/>). When a stream ends and nothing is pending, the last row moves
/// into its place (context and state slice copied) so the batch stays dense. A new stream starts
/// with zero context and the model's initial state, and its last partial window is zero-padded,
/// both as upstream; so each stream's probabilities are those of running it alone.</para>
/// <para><b>Items.</b> An item is planned by <see cref="VadItemPlanner"/>: short items are one
/// stream; long ones several, scored side by side, each starting with a discarded warm-up. Their
/// probabilities are put back in window order and the segmentation rules run over the whole item.
/// An item's result is reported once all its streams have ended.</para>
/// <para><b>Failures.</b> A reader that throws fails its item only (the result carries the
/// exception); the other items go on. If the model throws, nothing is lost: the next
/// <see cref="Step"/> scores the same windows again (lower <see cref="MaxRunSize"/> first to
/// retry in smaller calls).</para>
/// <para>Buffers (windows, states, probabilities, rows) are allocated once, pinned; per window
/// nothing is allocated. Item bookkeeping is allocated per item, probability buffers for split
/// or retained items are pooled. Not thread-safe: one caller drives it.</para>
/// </remarks>
public sealed class VadBatcher : IDisposable
{
    private readonly IVadModel _model;
    private readonly VadOptions _options;
    private readonly int _window;
    private readonly int _context;
    private readonly int _row;
    private readonly int _stateSize;
    private readonly int _capacity;
    private readonly float[] _windows;
    private readonly float[] _states;
    private readonly float[] _probabilities;
    private readonly Slot[] _slots;
    private readonly Queue<PendingSubStream> _pending = new();
    private int _active;
    private int _maxRunSize;
    private bool _filled; // rows hold windows read but not all scored yet (the model threw)
    private int _scored;  // rows of the filled batch already scored
    private bool _disposed;

    public VadBatcher(IVadModel model, VadOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        if (model.BatchCapacity < 1) throw new ArgumentException($"The model's BatchCapacity must be at least 1 (is {model.BatchCapacity}).", nameof(model));
        if (model.StateSize < 0) throw new ArgumentException($"The model's StateSize must be >= 0 (is {model.StateSize}).", nameof(model));

        _model = model;
        _options = options.Clone();
        Planner = new VadItemPlanner(_options);
        _subStreamWindows = Planner.SubStreamWindows;
        _window = _options.WindowSamples;
        _context = _options.ContextSamples;
        _row = _context + _window;
        _stateSize = model.StateSize;
        _capacity = model.BatchCapacity;
        _maxRunSize = _capacity;
        _windows = GC.AllocateArray<float>(checked(_capacity * _row), pinned: true);
        _states = GC.AllocateArray<float>(checked(_capacity * _stateSize), pinned: true);
        _probabilities = GC.AllocateArray<float>(_capacity, pinned: true);
        _slots = new Slot[_capacity];
        for (int i = 0; i < _capacity; i++) _slots[i] = new Slot();
    }

    /// <summary>Most streams scored per step (the model's <see cref="IVadModel.BatchCapacity"/>).</summary>
    public int BatchCapacity => _capacity;

    /// <summary>Most rows per model call; a step with more active streams makes several calls.
    /// Lower it to retry after the model ran out of memory.</summary>
    /// <value>The default value is <see cref="BatchCapacity"/>.</value>
    public int MaxRunSize
    {
        get => _maxRunSize;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, _capacity);
            _maxRunSize = value;
        }
    }

    public VadItemPlanner Planner { get; }

    /// <summary>Model calls that returned, over this batcher's life.</summary>
    public long ModelCalls { get; private set; }

    /// <summary>Rows those calls scored, the warm-ups of split items included: <see cref="ModelRows"/> /
    /// <see cref="ModelCalls"/> is how full the batch ran, its capacity at best.</summary>
    public long ModelRows { get; private set; }

    /// <summary>Windows each sub-stream of the items enqueued from now on keeps (but the last); null
    /// never splits. Set it per shard to split no further than the batch needs
    /// (<see cref="VadOptions.SplitRows"/>); it never goes below <see cref="VadItemPlanner.SubStreamWindows"/>.</summary>
    /// <value>The default value is <see cref="VadItemPlanner.SubStreamWindows"/>.</value>
    public long? SubStreamWindows
    {
        get => _subStreamWindows;
        set
        {
            if (value is { } v && Planner.SubStreamWindows is { } min && v < min)
                throw new ArgumentOutOfRangeException(nameof(value), v, $"Sub-streams keep at least {min} windows (VadOptions.SubStreamSeconds).");
            if (value is not null && Planner.SubStreamWindows is null)
                throw new InvalidOperationException("Items are never split (VadOptions.SubStreamSeconds is null).");
            _subStreamWindows = value;
        }
    }

    private long? _subStreamWindows;

    /// <summary>Streams holding a row now.</summary>
    public int ActiveStreams => _active;

    /// <summary>Streams waiting for a row.</summary>
    public int PendingStreams => _pending.Count;

    /// <summary>Nothing active, pending or half-scored: every enqueued item has its result.</summary>
    public bool IsIdle => _active == 0 && _pending.Count == 0 && !_filled;

    /// <summary>Queues an item (as one or more streams); its readers open when they get a row.</summary>
    public void Enqueue(VadItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var plan = Planner.Plan(item.ExpectedSamples, _subStreamWindows);
        var state = new ItemState(item, plan, new SpeechSegmenter(_options));
        if (plan.Length > 1 || _options.RetainProbabilities)
        {
            long expectedWindows = item.ExpectedSamples is { } n ? (n + _window - 1) / _window : 0;
            state.Buffer = ArrayPool<float>.Shared.Rent((int)Math.Clamp(expectedWindows + 1, 1024, 1 << 20)); // grows if longer
        }
        foreach (var sub in plan) _pending.Enqueue(new PendingSubStream(state, sub));
    }

    /// <summary>
    /// Reads one window for every active stream (filling free rows from the pending ones), scores
    /// them, and routes the probabilities. Items that finished are added to <paramref name="completed"/>.
    /// Returns the number of windows scored (0 when there was nothing to score).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int Step(ICollection<VadItemResult> completed)
    {
        ArgumentNullException.ThrowIfNull(completed);
        ObjectDisposedException.ThrowIf(_disposed, this);

        if (!_filled)
        {
            FillRows(completed);
            if (_active == 0) return 0;
            _filled = true;
            _scored = 0;
        }

        while (_scored < _active)
        {
            int n = Math.Min(_maxRunSize, _active - _scored);
            _model.Run(
                _windows.AsSpan(_scored * _row, n * _row),
                _states.AsSpan(_scored * _stateSize, n * _stateSize),
                _probabilities.AsSpan(_scored, n),
                n);
            _scored += n;
            ModelCalls++;
            ModelRows += n;
        }
        _filled = false;

        int scored = _active;
        Deliver();
        RetireEnded(completed);
        return scored;
    }

    /// <summary>Steps until every enqueued item has its result.</summary>
    public void RunUntilIdle(ICollection<VadItemResult> completed, CancellationToken cancellationToken = default)
    {
        while (!IsIdle)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Step(completed);
        }
    }

    /// <summary>Closes the readers still open and drops unfinished items without results.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        for (int r = 0; r < _active; r++)
        {
            var slot = _slots[r];
            (slot.Reader as IDisposable)?.Dispose();
            slot.Item?.ReturnBuffer();
            slot.Clear();
        }
        while (_pending.TryDequeue(out var pending)) pending.Item.ReturnBuffer();
        _active = 0;
        _filled = false;
    }

    // Gives every row 0.._active-1 a fresh window, starting pending streams in free rows and
    // retiring streams found to have ended, until the rows are full or nothing is left.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void FillRows(ICollection<VadItemResult> completed)
    {
        int r = 0;
        while (true)
        {
            if (r == _active)
            {
                if (r == _capacity || !TryStartPending(r, completed)) break;
                _active++;
            }
            var slot = _slots[r];
            if (!slot.Ended && !slot.Item!.Completed && TryReadWindow(r, slot, completed))
            {
                r++;
                continue;
            }
            Retire(r, completed); // row r now holds another stream, unread, or is gone
        }
    }

    // Fills row r's window from its stream. False when the stream had nothing more (or failed).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool TryReadWindow(int r, Slot slot, ICollection<VadItemResult> completed)
    {
        var item = slot.Item!;
        var window = _windows.AsSpan(r * _row + _context, _window);
        int want = (int)Math.Min(_window, slot.Remaining);
        int got = 0;
        try
        {
            while (got < want)
            {
                int n = slot.Reader!.Read(window.Slice(got, want - got));
                if (n == 0) break;
                if ((uint)n > (uint)(want - got))
                    throw new InvalidOperationException($"The reader of VAD item {item.Item.Id} returned {n} samples for a buffer of {want - got}.");
                got += n;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Fail(item, ex, completed);
            slot.Ended = true;
            return false;
        }

        if (got == 0)
        {
            slot.Ended = true;
            return false;
        }
        if (got < _window)
        {
            window[got..].Clear(); // upstream pads the last chunk with zeros
            slot.Ended = true;
        }
        slot.Remaining -= got;
        if (slot.Remaining == 0) slot.Ended = true;
        if (slot.WarmUpWindows == 0) item.CoreSamples[slot.Index] += got;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Deliver()
    {
        for (int r = 0; r < _active; r++)
        {
            var slot = _slots[r];
            var row = _windows.AsSpan(r * _row, _row);
            row.Slice(_window, _context).CopyTo(row); // the row's last samples are the next window's context

            var item = slot.Item!;
            if (item.Completed) continue; // failed while this stream was in flight
            if (slot.WarmUpWindows > 0)
            {
                slot.WarmUpWindows--;
                continue;
            }

            int k = slot.Index;
            if (item.Buffer is null)
            {
                item.Segmenter.Append(_probabilities.AsSpan(r, 1), item.Segments);
                item.Fed++;
                item.CoreWindows[k]++;
            }
            else
            {
                long index = item.Plan[k].CoreStart / _window + item.CoreWindows[k];
                item.Store(index, _probabilities[r]);
                item.CoreWindows[k]++;
                FeedBuffered(item);
            }
        }
    }

    // Feeds the segmenter the buffered probabilities that now continue the sequence without a gap.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void FeedBuffered(ItemState item)
    {
        while (true)
        {
            // Sub-stream k keeps windows [k*L, (k+1)*L) of the item, L its plan's length (set per shard: SubStreamWindows).
            int k = item.Plan.Length == 1 ? 0 : (int)Math.Min(item.Fed / (item.Plan[1].CoreStart / _window), item.Plan.Length - 1);
            long available = item.Plan[k].CoreStart / _window + item.CoreWindows[k];
            if (available <= item.Fed) return;
            item.Segmenter.Append(item.Buffer.AsSpan((int)item.Fed, (int)(available - item.Fed)), item.Segments);
            item.Fed = available;
        }
    }

    private void RetireEnded(ICollection<VadItemResult> completed)
    {
        int r = 0;
        while (r < _active)
        {
            var slot = _slots[r];
            if (slot.Ended || slot.Item!.Completed) Retire(r, completed); // row r: next stream, or the last row moved in
            else r++;
        }
    }

    // Ends row r's stream and hands the row to a pending stream, or to the last row's stream.
    private void Retire(int r, ICollection<VadItemResult> completed)
    {
        var slot = _slots[r];
        var item = slot.Item!;
        var reader = slot.Reader;
        slot.Clear();
        if (reader is IDisposable disposable)
        {
            try
            {
                disposable.Dispose();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Fail(item, ex, completed);
            }
        }
        item.OpenStreams--;
        if (item.OpenStreams == 0 && !item.Completed) Complete(item, completed);

        if (TryStartPending(r, completed)) return;
        int last = _active - 1;
        if (r != last)
        {
            _windows.AsSpan(last * _row, _context).CopyTo(_windows.AsSpan(r * _row, _context));
            _states.AsSpan(last * _stateSize, _stateSize).CopyTo(_states.AsSpan(r * _stateSize, _stateSize));
            (_slots[r], _slots[last]) = (_slots[last], _slots[r]);
        }
        _active--;
    }

    // Starts the next live pending stream in row r (which must be free): opens its reader, zeroes
    // its context, resets its state.
    private bool TryStartPending(int r, ICollection<VadItemResult> completed)
    {
        while (_pending.TryDequeue(out var next))
        {
            var item = next.Item;
            if (item.Completed)
            {
                item.OpenStreams--; // its item failed meanwhile
                continue;
            }
            ISampleReader reader;
            try
            {
                reader = item.Item.Source.OpenAt(next.Plan.ReadStart)
                         ?? throw new InvalidOperationException($"The source of VAD item {item.Item.Id} returned no reader.");
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                item.OpenStreams--;
                Fail(item, ex, completed);
                continue;
            }

            var slot = _slots[r];
            slot.Item = item;
            slot.Index = next.Plan.Index;
            slot.Reader = reader;
            slot.Remaining = next.Plan.CoreEnd is { } end ? end - next.Plan.ReadStart : long.MaxValue;
            slot.WarmUpWindows = next.Plan.WarmUpSamples / _window;
            slot.Ended = false;
            _windows.AsSpan(r * _row, _context).Clear();
            _model.ResetState(_states.AsSpan(r * _stateSize, _stateSize));
            return true;
        }
        return false;
    }

    private void Complete(ItemState item, ICollection<VadItemResult> completed)
    {
        var plan = item.Plan;
        // Only the last sub-stream with audio may fall short of its range: that is where the
        // item ended. A shorter one before it means the source gave different audio depending on
        // where it was opened.
        int last = -1;
        for (int k = 0; k < plan.Length; k++)
            if (item.CoreWindows[k] > 0) last = k;
        for (int k = 0; k < last; k++)
        {
            long expected = plan[k].CoreEnd!.Value - plan[k].CoreStart;
            if (item.CoreSamples[k] != expected)
            {
                Fail(item, new InvalidDataException(
                    $"VAD item {item.Item.Id}: the range at sample {plan[k].CoreStart} gave {item.CoreSamples[k]} samples instead of {expected}, "
                    + $"yet the range at sample {plan[last].CoreStart} gave audio. Its source must return the same audio wherever it is opened; "
                    + "check the decoder's seeking for this file."), completed);
                return;
            }
        }

        long total = 0;
        foreach (long n in item.CoreSamples) total += n;
        if (item.Buffer is not null) FeedBuffered(item);
        Debug.Assert(item.Fed == (total + _window - 1) / _window);
        item.Segmenter.Finish(total, item.Segments);
        float[]? probabilities = _options.RetainProbabilities ? item.Buffer.AsSpan(0, (int)item.Fed).ToArray() : null;
        item.ReturnBuffer();
        item.Completed = true;
        completed.Add(new VadItemResult(item.Item.Id, total, item.Segments, probabilities, null));
    }

    private static void Fail(ItemState item, Exception error, ICollection<VadItemResult> completed)
    {
        if (item.Completed) return;
        item.Completed = true;
        item.ReturnBuffer();
        completed.Add(new VadItemResult(item.Item.Id, 0, [], null, error));
    }

    private readonly record struct PendingSubStream(ItemState Item, VadSubStreamPlan Plan);

    private sealed class Slot
    {
        public ItemState? Item;
        public int Index;           // sub-stream index within the item
        public ISampleReader? Reader;
        public long Remaining;      // samples it may still read (its range's end), long.MaxValue: to the end
        public long WarmUpWindows;  // windows still to score and discard
        public bool Ended;          // read its last window

        public void Clear()
        {
            Item = null;
            Reader = null;
            Ended = false;
        }
    }

    private sealed class ItemState(VadItem item, VadSubStreamPlan[] plan, SpeechSegmenter segmenter)
    {
        public readonly VadItem Item = item;
        public readonly VadSubStreamPlan[] Plan = plan;
        public readonly SpeechSegmenter Segmenter = segmenter;
        public readonly List<SpeechSegment> Segments = [];
        public readonly long[] CoreSamples = new long[plan.Length];  // samples read in each sub-stream's own range
        public readonly long[] CoreWindows = new long[plan.Length];  // probabilities kept per sub-stream
        public float[]? Buffer;   // probabilities in window order (split or retained items), pooled
        public long Fed;          // windows given to the segmenter
        public int OpenStreams = plan.Length;
        public bool Completed;    // result reported

        public void Store(long index, float probability)
        {
            if (index >= Buffer!.Length)
            {
                var bigger = ArrayPool<float>.Shared.Rent((int)Math.Min(Array.MaxLength, Math.Max(2L * Buffer.Length, index + 1)));
                Buffer.AsSpan().CopyTo(bigger);
                ArrayPool<float>.Shared.Return(Buffer);
                Buffer = bigger;
            }
            Buffer[index] = probability;
        }

        public void ReturnBuffer()
        {
            if (Buffer is null) return;
            ArrayPool<float>.Shared.Return(Buffer);
            Buffer = null;
        }
    }
}
