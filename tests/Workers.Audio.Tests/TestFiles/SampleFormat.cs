namespace Workers.Audio.Tests.TestFiles;

/// <summary>The WAV sample encodings the tests write.</summary>
public enum SampleFormat
{
    U8,
    S16,
    S24,
    S32,
    F32,
    F64,
}
