using System.Buffers;
using System.Runtime.ExceptionServices;
using Microsoft.Win32.SafeHandles;

namespace Workers.Audio;

/// <summary>
/// A read-only, seekable stream over a corpus file (from <see cref="CorpusFileOpener"/>) whose every
/// read is bounded: a read that returns nothing within the read timeout throws
/// <see cref="TimeoutException"/> and faults the stream, whatever the kernel is doing (a hung network
/// mount, a disk that stopped answering). A read stuck in the kernel cannot be cancelled, so it runs on
/// a thread of the pool and is left behind when the time is up; its buffer is never handed out again.
/// Not thread-safe: one reader, like the sources built on it.
/// </summary>
/// <remarks>
/// The stream is its own thread-pool work item and reuses one event, so a bounded read allocates
/// nothing (the WAV reader's reads stay allocation-free): the caller fills in the request, queues
/// this, and waits on the event for at most the timeout.
/// </remarks>
public sealed class CorpusFileStream : Stream, IThreadPoolWorkItem
{
    private readonly ManualResetEventSlim _done = new();
    private byte[]? _requestBuffer;
    private int _requestOffset, _requestCount, _requestResult;
    private long _requestPosition;
    private Exception? _requestError;

    private readonly SafeFileHandle _handle;
    private readonly TimeSpan _timeout;
    private long _position;
    private ExceptionDispatchInfo? _fault;
    private bool _disposed;

    internal CorpusFileStream(SafeFileHandle handle, string path, TimeSpan timeout)
    {
        _handle = handle;
        Name = path;
        _timeout = timeout;
    }

    /// <summary>The path as asked for (for messages).</summary>
    public string Name { get; }

    /// <summary>The open descriptor (for <see cref="CorpusFileOpener.DescriptorPath"/>).</summary>
    public SafeFileHandle SafeFileHandle => _handle;

    public override bool CanRead => !_disposed;
    public override bool CanSeek => !_disposed;
    public override bool CanWrite => false;
    public override long Length => RandomAccess.GetLength(_handle);

    public override long Position
    {
        get => _position;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _position = value;
        }
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        return ReadInto(buffer, offset, count);
    }

    public override int Read(Span<byte> buffer)
    {
        if (_timeout == Timeout.InfiniteTimeSpan)
        {
            ThrowIfUnusable();
            int n = RandomAccess.Read(_handle, buffer, _position);
            _position += n;
            return n;
        }
        // A read with a time limit needs memory the pool thread can own: a rented array, returned
        // only when the read came back (a stuck read keeps it).
        byte[] rented = ArrayPool<byte>.Shared.Rent(buffer.Length);
        int got = ReadInto(rented, 0, buffer.Length);
        rented.AsSpan(0, got).CopyTo(buffer);
        ArrayPool<byte>.Shared.Return(rented);
        return got;
    }

    /// <summary>Reads into <paramref name="buffer"/>, which the caller must not reuse once this throws <see cref="TimeoutException"/>.</summary>
    private int ReadInto(byte[] buffer, int offset, int count)
    {
        ThrowIfUnusable();
        if (count == 0) return 0;
        int n;
        if (_timeout == Timeout.InfiniteTimeSpan)
            n = RandomAccess.Read(_handle, buffer.AsSpan(offset, count), _position);
        else
        {
            (_requestBuffer, _requestOffset, _requestCount, _requestPosition, _requestError) = (buffer, offset, count, _position, null);
            _done.Reset();
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            if (!_done.Wait(_timeout))
            {
                var timeout = new TimeoutException(
                    $"{Name}: a read returned nothing for {_timeout.TotalSeconds:0.###} s (Audio:ReadTimeout) and was abandoned; " +
                    "is its storage (a network mount, a disk) hung? The file is recorded as failed; the worker went on.");
                _fault = ExceptionDispatchInfo.Capture(timeout);
                throw timeout;
            }
            if (_requestError is { } error) ExceptionDispatchInfo.Capture(error).Throw();
            n = _requestResult;
        }
        _position += n;
        return n;
    }

    /// <summary>The read itself, on a pool thread.</summary>
    void IThreadPoolWorkItem.Execute()
    {
        try { _requestResult = RandomAccess.Read(_handle, _requestBuffer.AsSpan(_requestOffset, _requestCount), _requestPosition); }
        catch (Exception e) { _requestError = e; }
        // Once abandoned, nobody waits and the stream may be disposed: the event is left alone.
        if (_fault is null)
        {
            try { _done.Set(); }
            catch (ObjectDisposedException) { }
        }
    }

    /// <summary>True once a read timed out: a read may still be pending in the kernel on the caller's buffer.</summary>
    public bool ReadAbandoned => _fault is not null;

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _fault?.Throw();
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            SeekOrigin.End => Length + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        ArgumentOutOfRangeException.ThrowIfNegative(target, nameof(offset));
        return _position = target;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException("A corpus file is read-only.");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("A corpus file is read-only.");

    protected override void Dispose(bool disposing)
    {
        if (!_disposed && disposing)
        {
            _disposed = true;
            // A read still stuck in the kernel holds its own reference: the descriptor closes when it returns.
            _handle.Dispose();
            if (_fault is null) _done.Dispose();
        }
        base.Dispose(disposing);
    }
}
