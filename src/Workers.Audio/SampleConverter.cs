using System.Buffers.Binary;

namespace Workers.Audio;

/// <summary>Interleaved little-endian WAV frames to mono float32 in [-1, 1].</summary>
internal static class SampleConverter
{
    /// <summary>Converts <c>dest.Length</c> frames of <paramref name="header"/>'s format from <paramref name="frames"/>.</summary>
    public static void ToMono(WavHeader header, ReadOnlySpan<byte> frames, Span<float> dest)
    {
        switch (header.Encoding, header.BitsPerSample)
        {
            case (WavEncoding.Pcm, 8): Convert<Pcm8>(frames, dest, header.Channels); break;
            case (WavEncoding.Pcm, 16): Convert<Pcm16>(frames, dest, header.Channels); break;
            case (WavEncoding.Pcm, 24): Convert<Pcm24>(frames, dest, header.Channels); break;
            case (WavEncoding.Pcm, 32): Convert<Pcm32>(frames, dest, header.Channels); break;
            case (WavEncoding.Float, 32): Convert<Float32>(frames, dest, header.Channels); break;
            case (WavEncoding.Float, 64): Convert<Float64>(frames, dest, header.Channels); break;
            default: throw new InvalidOperationException($"No direct conversion for {header.Encoding} {header.BitsPerSample}-bit.");
        }
    }

    // One generic loop per sample type; the JIT specialises it for each struct, so the
    // per-sample read is inlined rather than dispatched.
    private static void Convert<T>(ReadOnlySpan<byte> frames, Span<float> dest, int channels)
        where T : struct, ISample
    {
        int size = T.Size;
        if (channels == 1)
        {
            for (int i = 0; i < dest.Length; i++)
                dest[i] = T.Read(frames.Slice(i * size, size));
            return;
        }

        float scale = 1f / channels;
        int frameBytes = size * channels;
        for (int i = 0; i < dest.Length; i++)
        {
            ReadOnlySpan<byte> frame = frames.Slice(i * frameBytes, frameBytes);
            float sum = 0;
            for (int c = 0; c < frameBytes; c += size)
                sum += T.Read(frame.Slice(c, size));
            dest[i] = sum * scale;
        }
    }

    private interface ISample
    {
        static abstract int Size { get; }

        static abstract float Read(ReadOnlySpan<byte> sample);
    }

    private struct Pcm8 : ISample
    {
        public static int Size => 1;

        public static float Read(ReadOnlySpan<byte> sample) => (sample[0] - 128) * (1f / 128);
    }

    private struct Pcm16 : ISample
    {
        public static int Size => 2;

        public static float Read(ReadOnlySpan<byte> sample) => BinaryPrimitives.ReadInt16LittleEndian(sample) * (1f / 32768);
    }

    private struct Pcm24 : ISample
    {
        public static int Size => 3;

        public static float Read(ReadOnlySpan<byte> sample) =>
            (sample[0] | sample[1] << 8 | (sbyte)sample[2] << 16) * (1f / 8388608);
    }

    private struct Pcm32 : ISample
    {
        public static int Size => 4;

        public static float Read(ReadOnlySpan<byte> sample) => BinaryPrimitives.ReadInt32LittleEndian(sample) * (1f / 2147483648);
    }

    private struct Float32 : ISample
    {
        public static int Size => 4;

        public static float Read(ReadOnlySpan<byte> sample) => BinaryPrimitives.ReadSingleLittleEndian(sample);
    }

    private struct Float64 : ISample
    {
        public static int Size => 8;

        public static float Read(ReadOnlySpan<byte> sample) => (float)BinaryPrimitives.ReadDoubleLittleEndian(sample);
    }
}
