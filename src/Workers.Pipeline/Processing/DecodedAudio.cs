using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Processing;

/// <summary>
/// One item decoded once to 16 kHz mono float32, kept in memory or in a file of the shard's temp
/// folder; every sub-stream the batcher opens reads its own range of it (<see cref="OpenAt"/>), so
/// a long compressed item costs one decode however many sub-streams score it.
/// </summary>
/// <remarks>
/// <para>Written by one decoder thread (<see cref="Append"/>), then sealed, and only then handed to
/// the batcher, so readers never see it grow.</para>
/// <para><b>In memory</b> (<see cref="CreateInMemory"/>): 64 KB blocks from a process-wide pool, reused
/// by the next items and shards; readers copy straight from them into the batch. The decoder stage
/// keeps these within a budget (<see cref="DecodeAheadOptions.MaxInMemoryMb"/>): a write and a read
/// of the page cache per sample cost about as much as the 16 kHz WAV reader itself.</para>
/// <para><b>In a file</b> (<see cref="Create"/>): opened with delete-on-close, so disposing removes it,
/// and a worker killed outright leaves it inside its temp folder, which the next start sweeps
/// (<c>TempFolders.SweepDead</c>). Reads go through the page cache with no mapping, so the decoded
/// audio never counts against the worker's resident memory; each reader holds one 64 KB block.</para>
/// </remarks>
public sealed class DecodedAudio : IVadAudioSource, IDisposable
{
    /// <summary>Samples per block: what a file reader fetches at once, and an in-memory block holds.</summary>
    public const int BlockSamples = 16 * 1024;

    // Blocks of disposed in-memory items, for the next ones: the decoder stage's budget bounds how many exist.
    private static readonly ConcurrentBag<float[]> FreeBlocks = [];

    private readonly SafeFileHandle? _file;
    private readonly List<float[]>? _blocks;
    private long _samples;
    private bool _sealed;
    private bool _disposed;

    private DecodedAudio(string path, SafeFileHandle? file, List<float[]>? blocks) => (Path, _file, _blocks) = (path, file, blocks);

    /// <summary>The file holding the samples (removed on dispose), or the item's name for one held in memory.</summary>
    public string Path { get; }

    /// <summary>Held in memory, not in a file.</summary>
    public bool InMemory => _blocks is not null;

    /// <summary>Samples decoded (all of them once sealed).</summary>
    public long Samples => _samples;

    /// <summary>Bytes the samples take.</summary>
    public long Bytes => _samples * sizeof(float);

    /// <summary>Creates the (new, empty) file at <paramref name="path"/>.</summary>
    public static DecodedAudio Create(string path) =>
        new(path, File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose), null);

    /// <summary>Creates an empty in-memory item; <paramref name="name"/> names it in messages.</summary>
    public static DecodedAudio CreateInMemory(string name) => new(name, null, []);

    /// <summary>Appends decoded samples; the decoder's thread only, before <see cref="Seal"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Append(ReadOnlySpan<float> samples)
    {
        if (_sealed) throw new InvalidOperationException("The decoded audio is sealed.");
        if (_blocks is null)
        {
            RandomAccess.Write(_file!, MemoryMarshal.AsBytes(samples), Bytes);
            _samples += samples.Length;
            return;
        }
        while (!samples.IsEmpty)
        {
            int offset = (int)(_samples % BlockSamples);
            if (offset == 0 && _blocks.Count * (long)BlockSamples == _samples)
                _blocks.Add(TakeBlock());
            int n = Math.Min(samples.Length, BlockSamples - offset);
            samples[..n].CopyTo(_blocks[^1].AsSpan(offset));
            samples = samples[n..];
            _samples += n;
        }
    }

    /// <summary>
    /// Where the decoder may write the next samples of an in-memory item itself (the free end of its last
    /// block, a new block when that is full), saving a copy; <see cref="Advance"/> then counts what it wrote.
    /// Empty for an item in a file: <see cref="Append"/> it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public Span<float> AppendSpan()
    {
        if (_sealed) throw new InvalidOperationException("The decoded audio is sealed.");
        if (_blocks is null) return [];
        int offset = (int)(_samples % BlockSamples);
        if (offset == 0 && _blocks.Count * (long)BlockSamples == _samples)
            _blocks.Add(TakeBlock());
        return _blocks[^1].AsSpan(offset);
    }

    /// <summary>Counts <paramref name="samples"/> written into the span <see cref="AppendSpan"/> gave.</summary>
    public void Advance(int samples)
    {
        int room = _blocks is null ? 0 : (int)((long)_blocks.Count * BlockSamples - _samples);
        ArgumentOutOfRangeException.ThrowIfNegative(samples);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(samples, room);
        _samples += samples;
    }

    /// <summary>Ends writing: from now on the length is final and readers may open.</summary>
    public void Seal() => _sealed = true;

    public ISampleReader OpenAt(long startSample)
    {
        if (!_sealed) throw new InvalidOperationException("The decoded audio is still being written.");
        ArgumentOutOfRangeException.ThrowIfNegative(startSample);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _blocks is null ? new FileReader(this, startSample) : new MemoryReader(this, startSample);
    }

    // A pooled block, or a new one on the pinned heap: the GC never copies it from generation to generation, nor zeroes it.
    private static float[] TakeBlock() => FreeBlocks.TryTake(out var free) ? free : GC.AllocateUninitializedArray<float>(BlockSamples, pinned: true);

    /// <summary>Removes the file, or gives the blocks back to the pool; readers must have ended.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _file?.Dispose();
        if (_blocks is null) return;
        foreach (var block in _blocks) FreeBlocks.Add(block);
        _blocks.Clear();
    }

    /// <summary>Reads forward from a sample to the end, straight from the blocks.</summary>
    private sealed class MemoryReader(DecodedAudio audio, long position) : ISampleReader
    {
        private long _next = Math.Min(position, audio._samples);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public int Read(Span<float> destination)
        {
            ObjectDisposedException.ThrowIf(audio._disposed, audio);
            int count = (int)Math.Min(destination.Length, audio._samples - _next);
            if (count <= 0) return 0;
            int offset = (int)(_next % BlockSamples);
            count = Math.Min(count, BlockSamples - offset);
            audio._blocks![(int)(_next / BlockSamples)].AsSpan(offset, count).CopyTo(destination);
            _next += count;
            return count;
        }
    }

    /// <summary>Reads forward from a sample to the end, a block at a time.</summary>
    private sealed class FileReader(DecodedAudio audio, long position) : ISampleReader, IDisposable
    {
        private float[]? _block = ArrayPool<float>.Shared.Rent(BlockSamples);
        private long _next = Math.Min(position, audio._samples); // next sample to fetch from the file
        private int _offset, _length;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public int Read(Span<float> destination)
        {
            ObjectDisposedException.ThrowIf(_block is null, this);
            if (_offset == _length)
            {
                int want = (int)Math.Min(BlockSamples, audio._samples - _next);
                if (want <= 0 || destination.IsEmpty) return 0;
                var bytes = MemoryMarshal.AsBytes(_block.AsSpan(0, want));
                int got = 0;
                while (got < bytes.Length)
                {
                    int n = RandomAccess.Read(audio._file!, bytes[got..], _next * sizeof(float) + got);
                    if (n == 0) throw new IOException($"{audio.Path}: the decoded audio ended at byte {_next * sizeof(float) + got}, before its {audio.Bytes} bytes.");
                    got += n;
                }
                _next += want;
                _offset = 0;
                _length = want;
            }
            int count = Math.Min(destination.Length, _length - _offset);
            _block.AsSpan(_offset, count).CopyTo(destination);
            _offset += count;
            return count;
        }

        public void Dispose()
        {
            if (_block is null) return;
            ArrayPool<float>.Shared.Return(_block);
            _block = null;
        }
    }
}
