using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Processing;

/// <summary>
/// One item decoded once to 16 kHz mono float32, in a file of the shard's temp folder; every
/// sub-stream the batcher opens reads its own range of it (<see cref="OpenAt"/>), so a long
/// compressed item costs one decode however many sub-streams score it.
/// </summary>
/// <remarks>
/// The file is written by one decoder thread (<see cref="Append"/>), then sealed, and only then
/// handed to the batcher, so readers never see it grow. It is opened with delete-on-close: disposing
/// removes it, and a worker killed outright leaves it inside its temp folder, which the next start
/// sweeps (<c>TempFolders.SweepDead</c>). Reads go through the page cache with no mapping, so the
/// decoded audio never counts against the worker's resident memory; each reader holds one 64 KB
/// block.
/// </remarks>
public sealed class DecodedAudio : IVadAudioSource, IDisposable
{
    internal const int BlockSamples = 16 * 1024;

    private readonly SafeFileHandle _file;
    private long _samples;
    private bool _sealed;

    private DecodedAudio(string path, SafeFileHandle file) => (Path, _file) = (path, file);

    /// <summary>The file holding the samples (removed on dispose).</summary>
    public string Path { get; }

    /// <summary>Samples decoded (all of them once sealed).</summary>
    public long Samples => _samples;

    /// <summary>Bytes the file takes.</summary>
    public long Bytes => _samples * sizeof(float);

    /// <summary>Creates the (new, empty) file at <paramref name="path"/>.</summary>
    public static DecodedAudio Create(string path) =>
        new(path, File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose));

    /// <summary>Appends decoded samples; the decoder's thread only, before <see cref="Seal"/>.</summary>
    public void Append(ReadOnlySpan<float> samples)
    {
        if (_sealed) throw new InvalidOperationException("The decoded audio is sealed.");
        RandomAccess.Write(_file, MemoryMarshal.AsBytes(samples), Bytes);
        _samples += samples.Length;
    }

    /// <summary>Ends writing: from now on the length is final and readers may open.</summary>
    public void Seal() => _sealed = true;

    public ISampleReader OpenAt(long startSample)
    {
        if (!_sealed) throw new InvalidOperationException("The decoded audio is still being written.");
        ArgumentOutOfRangeException.ThrowIfNegative(startSample);
        return new Reader(this, startSample);
    }

    public void Dispose() => _file.Dispose();

    /// <summary>Reads forward from a sample to the end, a block at a time.</summary>
    private sealed class Reader(DecodedAudio audio, long position) : ISampleReader, IDisposable
    {
        private float[]? _block = ArrayPool<float>.Shared.Rent(BlockSamples);
        private long _next = Math.Min(position, audio._samples); // next sample to fetch from the file
        private int _offset, _length;

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
                    int n = RandomAccess.Read(audio._file, bytes[got..], _next * sizeof(float) + got);
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
