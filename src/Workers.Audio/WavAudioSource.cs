using System.Buffers;
using System.Runtime.CompilerServices;

namespace Workers.Audio;

/// <summary>
/// The fast path: a 16 kHz PCM or float WAV file read in 64 KB blocks and converted in place,
/// with no process and no allocation per read (the block is rented from the shared pool, so opening
/// one item after another allocates none either). Reads go through <see cref="CorpusFileStream"/>, so one
/// that returns nothing for Audio:ReadTimeout throws <see cref="TimeoutException"/> instead of hanging.
/// </summary>
internal sealed class WavAudioSource : IAudioSource
{
    private const int BlockBytes = 64 * 1024;

    private readonly Stream _stream;
    private readonly WavHeader _header;
    private readonly byte[] _buffer;
    private readonly int _framesPerBlock;
    private long _framesLeft;
    private bool _disposed;

    /// <param name="stream">Positioned anywhere; owned and disposed by this source.</param>
    public WavAudioSource(Stream stream, WavHeader header, long startFrame, long? endFrame)
    {
        _stream = stream;
        _header = header;
        long total = header.FrameCount ?? throw new ArgumentException("The WAV data length is unknown.", nameof(header));
        long start = Math.Min(startFrame, total);
        long end = Math.Min(endFrame ?? total, total);
        _framesLeft = Math.Max(0, end - start);
        _framesPerBlock = Math.Max(1, BlockBytes / header.BlockAlign);
        _buffer = ArrayPool<byte>.Shared.Rent(_framesPerBlock * header.BlockAlign);
        _stream.Position = header.DataOffset + start * header.BlockAlign;
    }

    public int SampleRate => AudioDecoder.SampleRate;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int Read(Span<float> dest)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int blockAlign = _header.BlockAlign;
        int total = 0;
        while (total < dest.Length && _framesLeft > 0)
        {
            int frames = (int)Math.Min(Math.Min(dest.Length - total, _framesPerBlock), _framesLeft);
            int wanted = frames * blockAlign;
            int got = 0, n;
            // The array overload: a bounded read hands the block itself to the kernel, with no copy.
            while (got < wanted && (n = _stream.Read(_buffer, got, wanted - got)) > 0)
                got += n;
            int gotFrames = got / blockAlign;
            SampleConverter.ToMono(_header, _buffer.AsSpan(0, gotFrames * blockAlign), dest.Slice(total, gotFrames));
            total += gotFrames;
            // A file that shrank since it was opened ends early, like a truncated one.
            _framesLeft = got < wanted ? 0 : _framesLeft - gotFrames;
        }
        return total;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stream.Dispose();
        // A read abandoned after Audio:ReadTimeout may still write into the block: never hand it out again.
        if (_stream is not CorpusFileStream { ReadAbandoned: true })
            ArrayPool<byte>.Shared.Return(_buffer);
    }
}
