namespace Workers.Audio;

/// <summary>A range of a file to decode (seconds; null end: to the file's end), confined to <paramref name="CorpusRoot"/> (null: not confined).</summary>
public readonly record struct AudioRange(string Path, double StartSeconds, double? EndSeconds, string? CorpusRoot = null);

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
        options ??= AudioDecoderOptions.Default;
        var range = new AudioRange(path, startSeconds, endSeconds, corpusRoot);
        var (startSample, endSample) = Check(range, options);
        if (OpenDirect(range, startSample, endSample, options, out var forFfmpeg, out _) is { } direct)
            return direct;
        return FfmpegAudioSource.Start(path, forFfmpeg, startSample, endSample, options); // owns the stream now: ffmpeg reads through its descriptor
    }

    /// <summary>
    /// Whether <paramref name="path"/> is named as a file <see cref="OpenGroup"/> decodes in its ffmpeg's main thread, as a
    /// filter-graph source, when its range starts at zero and its header says it holds one audio stream: WAV, and the
    /// codecs <see cref="HeaderDuration"/> reads (FLAC, MP3, Opus; an Ogg file may hold Vorbis). For a caller choosing
    /// what to group before it opens anything: a misnamed file is decoded as an input instead, with the same samples,
    /// only slower. (A 16 kHz WAV is read directly, in a group or not.)
    /// </summary>
    public static bool IsGraphSourceName(string path)
    {
        var extension = Path.GetExtension(path.AsSpan());
        foreach (var e in GraphSourceExtensions)
            if (extension.Equals(e, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    private static readonly string[] GraphSourceExtensions = [".flac", ".mp3", ".opus", ".wav"];

    /// <summary>
    /// Opens several ranges at once, for a caller about to decode them all: the ones ffmpeg decodes are
    /// decoded by one ffmpeg process together, into files in <paramref name="folder"/>, before this returns.
    /// ffmpeg's start-up costs about 90 ms of CPU on Debian 12 (it links 215 libraries), as much as decoding
    /// 10 minutes of 44.1 kHz WAV or a minute of MP3: paid once per group instead of once per file, a corpus of
    /// short files decodes several times faster, with the very samples each file gives alone.
    /// </summary>
    /// <returns>Per range, its source (reading the group's output file, which it deletes when disposed; or a
    /// 16 kHz WAV read directly), or null where the caller must <see cref="Open"/> it alone: it could not be
    /// opened (<see cref="Open"/> then says why), or the group's ffmpeg failed, said anything on stderr, or
    /// stopped writing for <see cref="AudioDecoderOptions.ReadTimeout"/>. ffmpeg's messages name no input, so
    /// a group with a bad file gives its files back to be decoded alone, where each failure is the file's own.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled (ffmpeg is killed).</exception>
    public static IAudioSource?[] OpenGroup(IReadOnlyList<AudioRange> ranges, AudioDecoderOptions options, string folder, CancellationToken ct)
    {
        var sources = new IAudioSource?[ranges.Count];
        var group = new List<FfmpegGroup.Input>();
        try
        {
            for (var i = 0; i < ranges.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                CorpusFileStream? stream = null;
                try
                {
                    var (startSample, endSample) = Check(ranges[i], options);
                    sources[i] = OpenDirect(ranges[i], startSample, endSample, options, out stream, out var wav);
                    if (stream is not null)
                        group.Add(new FfmpegGroup.Input(i, ranges[i].Path, stream, startSample, endSample, FfmpegGroup.IsGraphSource(stream, startSample, wav)));
                    stream = null;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    stream?.Dispose(); // left null: opened alone, it fails again and says why
                }
            }
            if (group.Count == 1)
            {
                var only = group[0];
                group.Clear();
                sources[only.Index] = FfmpegAudioSource.Start(only.Path, only.Stream, only.StartSample, only.EndSample, options);
            }
            else if (group.Count > 1)
            {
                FfmpegGroup.Decode(group, options, folder, sources, ct);
            }
            return sources;
        }
        catch
        {
            foreach (var s in sources) s?.Dispose();
            throw;
        }
        finally
        {
            foreach (var input in group) input.Stream.Dispose(); // ffmpeg has exited: it read them through their descriptors
        }
    }

    private static (long Start, long? End) Check(AudioRange range, AudioDecoderOptions options)
    {
        var (path, startSeconds, endSeconds, _) = range;
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!double.IsFinite(startSeconds) || startSeconds < 0 || startSeconds > MaxSeconds)
            throw new ArgumentOutOfRangeException(nameof(startSeconds), startSeconds, "The start must be a finite, non-negative number of seconds.");
        if (endSeconds is double e && (!double.IsFinite(e) || e < startSeconds || e > MaxSeconds))
            throw new ArgumentOutOfRangeException(nameof(endSeconds), endSeconds, "The end must be a finite number of seconds, not before the start.");
        options.Validate();
        return (ToSample(startSeconds), endSeconds is double end ? ToSample(end) : null);
    }

    /// <summary>
    /// Opens the file once, through <see cref="CorpusFileOpener"/>: a 16 kHz WAV becomes its reader and an empty
    /// range an empty source; anything else gives its checked stream (<paramref name="forFfmpeg"/>, the caller's now) to ffmpeg,
    /// with <paramref name="wav"/> true where that stream's WAV header was read (one audio stream, which ffmpeg decodes).
    /// </summary>
    private static IAudioSource? OpenDirect(AudioRange range, long startSample, long? endSample, AudioDecoderOptions options, out CorpusFileStream? forFfmpeg, out bool wav)
    {
        forFfmpeg = null;
        wav = false;
        // Unbuffered: the WAV source reads in large blocks of its own.
        CorpusFileStream? stream = CorpusFileOpener.Open(range.Path, range.CorpusRoot, options.ReadTimeout);
        try
        {
            Span<byte> magic = stackalloc byte[12];
            int got = stream.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
            if (WavHeader.HasWaveMagic(magic[..got]))
            {
                stream.Position = 0;
                var header = WavHeader.Read(stream, range.Path);
                wav = true;
                if (header.CanDecodeDirectly && header.SampleRate == SampleRate)
                {
                    var source = new WavAudioSource(stream, header, startSample, endSample);
                    stream = null; // owned by the source now
                    return source;
                }
            }

            if (endSample <= startSample)
                return new EmptyAudioSource();
            forFfmpeg = stream;
            stream = null;
            return null;
        }
        finally
        {
            stream?.Dispose();
        }
    }

    internal static long ToSample(double seconds) => (long)Math.Round(seconds * SampleRate, MidpointRounding.AwayFromZero);
}
