using System.Buffers;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Processing;

/// <summary>
/// Decodes ahead of the reader on the thread pool, so audio decoding (WAV parsing, an ffmpeg pipe)
/// overlaps inference instead of stalling the batch. At most <c>maxChunks</c> chunks are held per
/// stream, so memory is bounded by the number of active streams, never by file length. A decode
/// error is kept and thrown from <see cref="Read"/>, where the batcher turns it into a failure of
/// that one item.
/// </summary>
/// <remarks>
/// One lock guards the queue. The filler runs as one work item at a time (<c>_filling</c>): it
/// decodes outside the lock and only takes the lock to publish a chunk, so the inference thread
/// waits only when the stream is truly behind.
/// </remarks>
public sealed class PrefetchingReader : ISampleReader, IDisposable
{
    private readonly Func<ISampleReader> _open;
    private readonly int _chunkSamples;
    private readonly int _maxChunks;
    private readonly Queue<(float[] Buffer, int Length)> _ready = new();
    private readonly object _lock = new();
    private ISampleReader? _inner;
    private float[]? _current;
    private int _currentLength, _currentOffset;
    private bool _filling, _eof, _disposed;
    private Exception? _error;

    public PrefetchingReader(Func<ISampleReader> open, int chunkSamples = 16384, int maxChunks = 4)
    {
        _open = open;
        _chunkSamples = chunkSamples;
        _maxChunks = maxChunks;
        lock (_lock) ScheduleFillLocked();
    }

    public int Read(Span<float> destination)
    {
        var written = 0;
        while (written < destination.Length)
        {
            if (_current is not null && _currentOffset < _currentLength)
            {
                var n = Math.Min(destination.Length - written, _currentLength - _currentOffset);
                _current.AsSpan(_currentOffset, n).CopyTo(destination[written..]);
                _currentOffset += n;
                written += n;
                continue;
            }
            lock (_lock)
            {
                if (_current is not null) { ArrayPool<float>.Shared.Return(_current); _current = null; }
                while (_ready.Count == 0 && !_eof && _error is null) { ScheduleFillLocked(); Monitor.Wait(_lock); }
                if (_ready.Count > 0)
                {
                    (_current, _currentLength) = _ready.Dequeue();
                    _currentOffset = 0;
                    ScheduleFillLocked();
                    continue;
                }
                if (_error is not null) throw new AudioReadException(_error);
                return written; // end of stream
            }
        }
        return written;
    }

    private void ScheduleFillLocked()
    {
        if (_filling || _eof || _error is not null || _disposed || _ready.Count >= _maxChunks) return;
        _filling = true;
        ThreadPool.UnsafeQueueUserWorkItem(static s => s.Fill(), this, preferLocal: false);
    }

    private void Fill()
    {
        while (true)
        {
            var buffer = ArrayPool<float>.Shared.Rent(_chunkSamples);
            int n;
            try
            {
                _inner ??= _open();
                n = ReadFull(_inner, buffer.AsSpan(0, _chunkSamples));
            }
            catch (Exception e)
            {
                ArrayPool<float>.Shared.Return(buffer);
                lock (_lock) { _error = e; _filling = false; Monitor.PulseAll(_lock); }
                return;
            }
            lock (_lock)
            {
                if (_disposed) { ArrayPool<float>.Shared.Return(buffer); _filling = false; return; }
                if (n > 0) _ready.Enqueue((buffer, n)); else ArrayPool<float>.Shared.Return(buffer);
                if (n < _chunkSamples) _eof = true;
                Monitor.PulseAll(_lock);
                if (_eof || _ready.Count >= _maxChunks) { _filling = false; return; }
            }
        }
    }

    private static int ReadFull(ISampleReader reader, Span<float> dest)
    {
        var total = 0;
        while (total < dest.Length)
        {
            var n = reader.Read(dest[total..]);
            if (n <= 0) break;
            total += n;
        }
        return total;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            // Wait for an in-flight fill: it may still be reading from _inner.
            while (_filling) Monitor.Wait(_lock, 50);
            while (_ready.Count > 0) ArrayPool<float>.Shared.Return(_ready.Dequeue().Buffer);
            if (_current is not null) { ArrayPool<float>.Shared.Return(_current); _current = null; }
        }
        (_inner as IDisposable)?.Dispose();
    }
}

/// <summary>Decoding failed; the inner exception is the decoder's own, with its reason.</summary>
public sealed class AudioReadException(Exception inner) : Exception(inner.Message, inner);
