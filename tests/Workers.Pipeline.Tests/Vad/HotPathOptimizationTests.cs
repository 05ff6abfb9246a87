using System.Reflection;
using Workers.Audio;
using Workers.Pipeline.Processing;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Vad;

/// <summary>
/// The per-window and per-sample loops are compiled fully optimized at their first call. Left to tiering they
/// ran as unoptimized tier-0 code for the first seconds of every worker process (perf showed
/// <c>SampleConverter.Pcm16Mono</c>, <c>Vector.Widen</c> and the batcher's window loop "QuickJitted"): a 16 kHz WAV
/// decoded at 50,000x per core instead of 85,000x, and a worker's first shards are those seconds.
/// </summary>
public sealed class HotPathOptimizationTests
{
    private static Type Audio(string name) => typeof(AudioDecoder).Assembly.GetType("Workers.Audio." + name, throwOnError: true)!;

    public static TheoryData<Type, string> HotLoops() => new()
    {
        { Audio("WavAudioSource"), "Read" },
        { Audio("FfmpegAudioSource"), "Read" },
        { Audio("SampleConverter"), "ToMono" },
        { Audio("SampleConverter"), "Pcm16Mono" },
        { typeof(VadBatcher), "Step" },
        { typeof(VadBatcher), "FillRows" },
        { typeof(VadBatcher), "TryReadWindow" },
        { typeof(VadBatcher), "Deliver" },
        { typeof(SpeechSegmenter), "Append" },
        { typeof(SileroVadModel), "Run" },
        { typeof(DecodedAudio), "Append" },
        { typeof(DecodedAudio), "AppendSpan" },
    };

    [Theory]
    [MemberData(nameof(HotLoops))]
    public void A_hot_loop_is_compiled_fully_optimized_at_its_first_call(Type type, string method)
    {
        var found = type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
            .Where(m => m.Name == method).ToList();
        Assert.NotEmpty(found);
        Assert.All(found, m => Assert.True(m.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveOptimization), $"{type.Name}.{m.Name} is left to tiering"));
    }

    [Fact]
    public void The_in_memory_reader_of_decoded_audio_is_too()
    {
        var reader = typeof(DecodedAudio).GetNestedTypes(BindingFlags.NonPublic).Single(t => t.Name == "MemoryReader").GetMethod("Read")!;
        Assert.True(reader.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveOptimization));
    }
}
