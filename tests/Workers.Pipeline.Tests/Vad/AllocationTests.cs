using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Vad;

public class AllocationTests
{
    [Fact]
    public void SegmenterAppend_AllocatesNothingPerWindow()
    {
        var probs = TestAudio.Probabilities(new Random(1), 200_000);
        // Measured three times, the least kept: a per-window allocation shows in every pass (at least
        // 24 bytes x 199,000), while a one-off of the runtime (a tier-up of the JIT landing mid-loop
        // once allocated ~8 KB in CI) shows in one pass only.
        var allocated = long.MaxValue;
        for (var pass = 0; pass < 3; pass++)
        {
            var segmenter = new SpeechSegmenter(new VadOptions { MaxSpeechSeconds = 5 });
            var finished = new List<SpeechSegment>(capacity: 100_000);
            segmenter.Append(probs.AsSpan(0, 1000), finished); // first growth of its split-point list

            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int at = 1000; at < probs.Length; at++) segmenter.Append(probs.AsSpan(at, 1), finished);
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
            Assert.True(finished.Count > 1000);
        }

        Assert.True(allocated < 4096, $"{allocated} bytes for 199,000 windows");
    }

    [Fact]
    public void BatcherStep_AllocatesNothingPerWindow()
    {
        var model = new FakeVadModel(16, 4);
        using var batcher = new VadBatcher(model, new VadOptions { SubStreamSeconds = null });
        for (int i = 0; i < 16; i++)
        {
            var audio = TestAudio.Speechy(i, 40 * 16000);
            batcher.Enqueue(new VadItem(i, new MemorySource(audio, i), audio.Length));
        }
        var results = new List<VadItemResult>();
        for (int i = 0; i < 10; i++) batcher.Step(results); // readers opened

        long before = GC.GetAllocatedBytesForCurrentThread();
        int windows = 0;
        for (int i = 0; i < 1000; i++) windows += batcher.Step(results);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(16_000, windows);
        // Only the 16 items' segment lists grow (about 15 KB); one small object per window would be 384 KB or more.
        Assert.True(allocated < 64 * 1024, $"{allocated} bytes for {windows} windows");
    }
}
