using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Vad;

public class SpeechSegmenterTests
{
    public static TheoryData<int> Seeds() => [.. Enumerable.Range(1, 40)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void StreamedInRandomChunks_EmitsWhatComputeReturnsForTheWhole(int seed)
    {
        var random = new Random(seed);
        for (int round = 0; round < 20; round++)
        {
            var options = SpeechTimestampsTests.RandomOptions(random);
            int windows = random.Next(0, 1500);
            var probs = TestAudio.Probabilities(random, windows);
            long total = windows == 0 ? 0 : (long)windows * 512 - (random.Next(2) == 0 ? 0 : random.Next(1, 512));
            var whole = SpeechTimestamps.Compute(probs, total, options);

            var segmenter = new SpeechSegmenter(options);
            var streamed = new List<SpeechSegment>();
            int at = 0;
            while (at < windows)
            {
                int chunk = Math.Min(windows - at, random.Next(0, 4) == 0 ? 1 : random.Next(0, 200));
                segmenter.Append(probs.AsSpan(at, chunk), streamed);
                at += chunk;
            }
            segmenter.Finish(total, streamed);

            Assert.Equal(whole, streamed);
        }
    }

    [Fact]
    public void SegmentIsEmittedBeforeFinish_OnceNothingLaterCanChangeIt()
    {
        // Speech [5120, 15360), then 10 windows of silence: any later segment starts at or after
        // 20480 (more than 2 * pad away) and 15360 + 480 lies inside the 39 * 512 + 1 samples seen.
        var segmenter = new SpeechSegmenter(new VadOptions());
        var finished = new List<SpeechSegment>();
        float[] probs = [.. Enumerable.Repeat(0.1f, 10), .. Enumerable.Repeat(0.9f, 20), .. Enumerable.Repeat(0.1f, 10)];

        segmenter.Append(probs, finished);
        Assert.Equal([new SpeechSegment(4640, 15840)], finished);

        segmenter.Finish(40 * 512, finished);
        Assert.Single(finished);
    }

    [Fact]
    public void SegmentWhosePaddingMayBeClamped_WaitsForFinish()
    {
        // Pad 1600 reaches past the audio seen so far (5632 + 1600 > 13 * 512 + 1): only the
        // total length decides the end.
        var segmenter = new SpeechSegmenter(new VadOptions { SpeechPadMs = 100, MinSilenceMs = 50 });
        var finished = new List<SpeechSegment>();
        float[] probs = [0.1f, .. Enumerable.Repeat(0.9f, 10), 0.1f, 0.1f, 0.1f];

        segmenter.Append(probs, finished);
        Assert.Empty(finished);

        segmenter.Finish(6666, finished);
        Assert.Equal([new SpeechSegment(0, 6666)], finished);
    }

    [Fact]
    public void SegmentCutAtTheLastWindowSeen_WaitsForTheAudioLength()
    {
        // Hard max-speech cut at window 31 (end 15872): the pad (160) reaches past the 31 * 512 + 1
        // samples known to exist, so the end is only known at Finish.
        var segmenter = new SpeechSegmenter(new VadOptions { MaxSpeechSeconds = 1, SpeechPadMs = 10 });
        var finished = new List<SpeechSegment>();
        segmenter.Append([0.1f, .. Enumerable.Repeat(0.9f, 31)], finished);
        Assert.Empty(finished);

        segmenter.Finish(31 * 512 + 100, finished);
        Assert.Equal([new SpeechSegment(352, 31 * 512 + 100)], finished);
    }

    [Fact]
    public void SegmentWaitsForItsNeighbour_WhileTheyMayShareTheGap()
    {
        // Pad 1600: after A = [1024, 7168) ends, speech could restart within 3200 samples, which
        // would move A's end. Once B starts it could still be dropped as too short (then A gets
        // its full pad), so A is emitted when B is kept: B = [9728, 15872), gap shared.
        var segmenter = new SpeechSegmenter(new VadOptions { SpeechPadMs = 100 });
        var finished = new List<SpeechSegment>();
        segmenter.Append([0.1f, 0.1f, .. Enumerable.Repeat(0.9f, 12), .. Enumerable.Repeat(0.1f, 5)], finished);
        Assert.Empty(finished);

        segmenter.Append([.. Enumerable.Repeat(0.9f, 12)], finished);
        Assert.Empty(finished);

        segmenter.Append([.. Enumerable.Repeat(0.1f, 5)], finished);
        Assert.Equal([new SpeechSegment(0, 8448)], finished);
    }

    [Fact]
    public void Reset_StartsAFreshStream()
    {
        var options = new VadOptions();
        float[] probs = [.. Enumerable.Repeat(0.9f, 20), .. Enumerable.Repeat(0.1f, 10)];
        var segmenter = new SpeechSegmenter(options);
        var first = new List<SpeechSegment>();
        segmenter.Append(probs, first);
        segmenter.Finish(30 * 512, first);

        segmenter.Reset();
        var second = new List<SpeechSegment>();
        segmenter.Append(probs, second);
        segmenter.Finish(30 * 512, second);

        Assert.Equal(SpeechTimestamps.Compute(probs, 30 * 512, options), second);
        Assert.Equal(first, second);
    }

    [Fact]
    public void UseAfterFinish_IsRefused()
    {
        var segmenter = new SpeechSegmenter(new VadOptions());
        var finished = new List<SpeechSegment>();
        segmenter.Append([0.9f], finished);
        segmenter.Finish(512, finished);
        Assert.Throws<InvalidOperationException>(() => segmenter.Append([0.9f], finished));
        Assert.Throws<InvalidOperationException>(() => segmenter.Finish(512, finished));
    }

    [Fact]
    public void InvalidOptions_AreRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => new SpeechSegmenter(new VadOptions { Threshold = 2 }));
        Assert.Contains("Threshold", error.Message);
    }
}
