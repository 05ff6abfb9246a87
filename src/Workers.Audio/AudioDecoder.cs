namespace Workers.Audio;

/// <summary>
/// Opens audio files as 16 kHz mono float32 streams.
/// <para>
/// 16 kHz WAV in PCM 8/16/24/32-bit or float 32/64-bit is read directly: channels are averaged
/// to mono and time ranges are sample-exact. Everything else (WAV at other rates, FLAC, MP3,
/// Ogg, ...) is decoded and resampled by an ffmpeg child process whose stdout is streamed.
/// </para>
/// <para>
/// Ranges: the first sample is <c>round(startSeconds * 16000)</c> and the range ends before
/// sample <c>round(endSeconds * 16000)</c> (clamped to the file), so ranges that share their
/// boundaries concatenate to the whole file. On the WAV path that is exact by construction.
/// On the ffmpeg path the input is seeked (<c>-ss</c> before <c>-i</c>, fast) to a whole
/// second at least 1 s before the start, and the rest is cut after resampling (<c>-ss</c>,
/// <c>-t</c> as output options, on the 16 kHz grid); the tests show ranges equal to the
/// whole-file decode sample for sample for FLAC, PCM WAV, MP3 and Vorbis on ffmpeg 5.1.
/// Formats whose seeking is itself approximate (VBR MP3 without a seek table) are as
/// accurate as ffmpeg's timestamps for them.
/// </para>
/// </summary>
public static class AudioDecoder
{
    /// <summary>The rate of every <see cref="IAudioSource"/>.</summary>
    public const int SampleRate = 16000;

    // Larger starts or ends are certainly mistakes (31,000 years); this also keeps sample
    // arithmetic far from overflow.
    private const double MaxSeconds = 1e12;

    /// <summary>Opens <paramref name="path"/> for decoding from <paramref name="startSeconds"/> up to <paramref name="endSeconds"/> (or the end).</summary>
    /// <remarks>
    /// The file is opened once, through <see cref="CorpusFileOpener"/> (non-blocking, regular files only,
    /// bounded by <see cref="AudioDecoderOptions.ReadTimeout"/>, confined to <paramref name="corpusRoot"/>);
    /// ffmpeg then reads that very file through this process's descriptor, never the name again, so a
    /// name swapped after the check cannot hand ffmpeg something else.
    /// </remarks>
    /// <param name="corpusRoot">The corpus root recorded at enqueue (its real path): the opened file must
    /// lie under it. Null: not confined (a file given on the command line).</param>
    /// <exception cref="AudioFormatException">The file is a malformed WAV file.</exception>
    /// <exception cref="CorpusFileRejectedException">Not a regular file, or outside <paramref name="corpusRoot"/>.</exception>
    /// <exception cref="TimeoutException">The open or a read of the file returned nothing for <see cref="AudioDecoderOptions.ReadTimeout"/>.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist; other <see cref="IOException"/>s as the file system reports them.</exception>
    /// <exception cref="InvalidOperationException">ffmpeg is needed and cannot be started (not installed).</exception>
    public static IAudioSource Open(string path, double startSeconds = 0, double? endSeconds = null, AudioDecoderOptions? options = null, string? corpusRoot = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!double.IsFinite(startSeconds) || startSeconds < 0 || startSeconds > MaxSeconds)
            throw new ArgumentOutOfRangeException(nameof(startSeconds), startSeconds, "The start must be a finite, non-negative number of seconds.");
        if (endSeconds is double e && (!double.IsFinite(e) || e < startSeconds || e > MaxSeconds))
            throw new ArgumentOutOfRangeException(nameof(endSeconds), endSeconds, "The end must be a finite number of seconds, not before the start.");
        options ??= AudioDecoderOptions.Default;
        options.Validate();

        long startSample = ToSample(startSeconds);
        long? endSample = endSeconds is double end ? ToSample(end) : null;

        // Unbuffered: the WAV source reads in large blocks of its own.
        CorpusFileStream? stream = CorpusFileOpener.Open(path, corpusRoot, options.ReadTimeout);
        try
        {
            Span<byte> magic = stackalloc byte[12];
            int got = stream.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
            if (WavHeader.HasWaveMagic(magic[..got]))
            {
                stream.Position = 0;
                var header = WavHeader.Read(stream, path);
                if (header.CanDecodeDirectly && header.SampleRate == SampleRate)
                {
                    var source = new WavAudioSource(stream, header, startSample, endSample);
                    stream = null; // owned by the source now
                    return source;
                }
            }

            if (endSample <= startSample)
                return new EmptyAudioSource();
            var decoding = FfmpegAudioSource.Start(path, stream, startSample, endSample, options);
            stream = null; // owned by the ffmpeg source now: ffmpeg reads through its descriptor
            return decoding;
        }
        finally
        {
            stream?.Dispose();
        }
    }

    internal static long ToSample(double seconds) => (long)Math.Round(seconds * SampleRate, MidpointRounding.AwayFromZero);
}
