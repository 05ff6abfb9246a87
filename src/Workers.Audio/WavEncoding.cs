namespace Workers.Audio;

/// <summary>How the samples of a WAV file's data chunk are encoded.</summary>
public enum WavEncoding
{
    /// <summary>Integer PCM: unsigned 8-bit, or signed 16-, 24- or 32-bit little-endian.</summary>
    Pcm,

    /// <summary>IEEE float, 32- or 64-bit little-endian.</summary>
    Float,

    /// <summary>Anything else (ADPCM, mu-law, MP3-in-WAV, odd bit depths): left to ffmpeg.</summary>
    Other,
}
