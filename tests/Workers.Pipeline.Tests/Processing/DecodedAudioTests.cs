using Workers.Pipeline.Processing;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Processing;

/// <summary>Decoded audio reads back what was appended, from any sample, in memory as in a file.</summary>
public sealed class DecodedAudioTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("decoded-audio-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static float[] Samples(int count, int seed)
    {
        var random = new Random(seed);
        var samples = new float[count];
        for (var i = 0; i < samples.Length; i++) samples[i] = random.NextSingle() * 2 - 1;
        return samples;
    }

    private static DecodedAudio Write(DecodedAudio audio, float[] samples, int chunk)
    {
        for (var at = 0; at < samples.Length; at += chunk) audio.Append(samples.AsSpan(at, Math.Min(chunk, samples.Length - at)));
        audio.Seal();
        return audio;
    }

    private static float[] ReadFrom(DecodedAudio audio, long start, int bufferSize)
    {
        var reader = audio.OpenAt(start);
        try
        {
            var all = new List<float>();
            var buffer = new float[bufferSize];
            for (int n; (n = reader.Read(buffer)) > 0;) all.AddRange(buffer.AsSpan(0, n));
            return [.. all];
        }
        finally
        {
            (reader as IDisposable)?.Dispose();
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Every_start_and_buffer_size_reads_back_the_appended_samples(bool inMemory)
    {
        var samples = Samples(3 * DecodedAudio.BlockSamples + 1234, 7);
        using var audio = Write(inMemory ? DecodedAudio.CreateInMemory("t") : DecodedAudio.Create(Path.Combine(_dir, "t.f32")), samples, 777);

        Assert.Equal(inMemory, audio.InMemory);
        Assert.Equal(samples.Length, audio.Samples);
        foreach (var start in new long[] { 0, 1, DecodedAudio.BlockSamples - 1, DecodedAudio.BlockSamples, 2 * DecodedAudio.BlockSamples + 5, samples.Length - 1, samples.Length, samples.Length + 10 })
            foreach (var size in new[] { 1, 512, 1000, DecodedAudio.BlockSamples + 3 })
                Assert.Equal(samples.AsSpan((int)Math.Min(start, samples.Length)).ToArray(), ReadFrom(audio, start, size));
    }

    [Fact]
    public void A_decoder_writing_into_the_blocks_itself_and_appending_gives_the_same_samples()
    {
        var samples = Samples(2 * DecodedAudio.BlockSamples + 999, 11);
        using var audio = DecodedAudio.CreateInMemory("direct");
        int at = 0, turn = 0;
        while (at < samples.Length)
        {
            if (turn++ % 3 == 2)
            {
                int n = Math.Min(300, samples.Length - at); // an append between direct writes, across a block's end too
                audio.Append(samples.AsSpan(at, n));
                at += n;
                continue;
            }
            var span = audio.AppendSpan();
            Assert.False(span.IsEmpty);
            int wrote = Math.Min(Math.Min(span.Length, 5000), samples.Length - at); // a decoder may fill less than offered
            samples.AsSpan(at, wrote).CopyTo(span);
            audio.Advance(wrote);
            at += wrote;
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => audio.Advance(audio.AppendSpan().Length + 1));
        audio.Seal();

        Assert.Equal(samples.Length, audio.Samples);
        Assert.Equal(samples, ReadFrom(audio, 0, 777));
        Assert.Equal(samples.AsSpan(DecodedAudio.BlockSamples - 3).ToArray(), ReadFrom(audio, DecodedAudio.BlockSamples - 3, 512));
        using var file = DecodedAudio.Create(Path.Combine(_dir, "f.f32"));
        Assert.True(file.AppendSpan().IsEmpty); // a file item is appended, never written into
    }

    [Fact]
    public void Disposing_twice_gives_the_blocks_back_once_so_two_later_items_never_share_one()
    {
        var first = Write(DecodedAudio.CreateInMemory("a"), Samples(2 * DecodedAudio.BlockSamples, 1), 4096);
        first.Dispose();
        first.Dispose(); // the batcher's release and the decoder's clean-up may both dispose

        var a = Samples(2 * DecodedAudio.BlockSamples, 2);
        var b = Samples(2 * DecodedAudio.BlockSamples, 3);
        using var second = Write(DecodedAudio.CreateInMemory("b"), a, 4096);
        using var third = Write(DecodedAudio.CreateInMemory("c"), b, 4096);

        Assert.Equal(a, ReadFrom(second, 0, 4096));
        Assert.Equal(b, ReadFrom(third, 0, 4096));
        Assert.Throws<ObjectDisposedException>(() => first.OpenAt(0));
    }
}
