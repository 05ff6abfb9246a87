namespace Workers.Audio.Tests.TestFiles;

/// <summary>
/// Tones encoded once per test class by the real ffmpeg: 5 s of 440 Hz at half scale, as
/// 44.1 kHz FLAC, MP3 and WAV, 8 kHz Ogg Vorbis and WAV, and a 44.1 kHz stereo FLAC whose right
/// channel is silent.
/// </summary>
public sealed class EncodedTones : IDisposable
{
    public const double Seconds = 5;
    public const double Hz = 440;
    public const double Amplitude = 0.5;

    private readonly TempDirectory _dir = new();

    public EncodedTones()
    {
        Wav44k = new WavBuilder { SampleRate = 44100 }.Write(_dir.File("tone44k.wav"), Signals.Sine(44100 * 5, 44100, Hz, Amplitude));
        Wav8k = new WavBuilder { SampleRate = 8000 }.Write(_dir.File("tone8k.wav"), Signals.Sine(8000 * 5, 8000, Hz, Amplitude));
        var left = Signals.Sine(44100 * 5, 44100, Hz, Amplitude);
        var stereo = new double[left.Length * 2];
        for (int i = 0; i < left.Length; i++)
            stereo[2 * i] = left[i];
        StereoWav44k = new WavBuilder { SampleRate = 44100, Channels = 2 }.Write(_dir.File("stereo44k.wav"), stereo);

        Flac = _dir.File("tone44k.flac");
        Ffmpeg.Run("-i", Wav44k, "-c:a", "flac", Flac);
        Mp3 = _dir.File("tone44k.mp3");
        Ffmpeg.Run("-i", Wav44k, "-c:a", "libmp3lame", "-b:a", "128k", Mp3);
        Ogg = _dir.File("tone8k.ogg");
        Ffmpeg.Run("-i", Wav8k, "-c:a", "libvorbis", "-q:a", "5", Ogg);
        MulawWav16k = _dir.File("mulaw16k.wav");
        Ffmpeg.Run("-i", Wav44k, "-ar", "16000", "-c:a", "pcm_mulaw", MulawWav16k);
        StereoFlac = _dir.File("stereo44k.flac");
        Ffmpeg.Run("-i", StereoWav44k, "-c:a", "flac", StereoFlac);
    }

    public string Wav44k { get; }

    public string Wav8k { get; }

    public string StereoWav44k { get; }

    public string Flac { get; }

    public string Mp3 { get; }

    public string Ogg { get; }

    public string StereoFlac { get; }

    public string MulawWav16k { get; }

    /// <summary>The ideal tone at 16 kHz, sample <paramref name="i"/>.</summary>
    public static double Ideal(long i) => Amplitude * Math.Sin(2 * Math.PI * Hz * i / AudioDecoder.SampleRate);

    public void Dispose() => _dir.Dispose();
}
