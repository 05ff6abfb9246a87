using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Vad;

// Expected values are worked out by hand from upstream's get_speech_timestamps (silero-vad v6).
// With the defaults at 16 kHz: window W = 512, window i starts at 512 * i, pad = 480,
// min speech = 4000, min silence = 1600, silence usable at max speech > 1568, threshold 0.5,
// neg threshold max(0.5 - 0.15, 0.01) = 0.35.
public class SpeechTimestampsTests
{
    private const float Speech = 0.9f, Silence = 0.1f, Between = 0.4f;

    private static float[] Seq(params (float P, int Windows)[] runs) =>
        runs.SelectMany(r => Enumerable.Repeat(r.P, r.Windows)).ToArray();

    private static SpeechSegment[] Compute(float[] probs, long total, VadOptions? options = null) =>
        SpeechTimestamps.Compute(probs, total, options ?? new VadOptions()).ToArray();

    private static SpeechSegment S(long start, long end) => new(start, end);

    [Fact]
    public void SingleSegment_IsPaddedOnBothSides()
    {
        // speech windows 10..29: start 5120; silence from window 30 (temp_end 15360) reaches
        // 1600 samples at window 34 (2048 >= 1600), so the segment is [5120, 15360) (> 4000: kept).
        var probs = Seq((Silence, 10), (Speech, 20), (Silence, 10));
        Assert.Equal([S(5120 - 480, 15360 + 480)], Compute(probs, 40 * 512));
    }

    [Fact]
    public void SilenceShorterThanMinSilence_DoesNotEndSpeech()
    {
        // Silence at windows 15..17 is 1536 < 1600 samples long when speech resumes at 18:
        //   if (window_size_samples * i) - temp_end < min_silence_samples: continue
        // so both speech runs make one segment [2560, 14336).
        var probs = Seq((Silence, 5), (Speech, 10), (Silence, 3), (Speech, 10), (Silence, 10));
        Assert.Equal([S(2560 - 480, 14336 + 480)], Compute(probs, 38 * 512));
    }

    [Fact]
    public void ProbabilityBetweenThresholds_NeitherStartsNorEndsSpeech()
    {
        // 0.45 never starts speech (< threshold); 0.4 never ends it (not < 0.35): the silence
        // starts at window 22 (temp_end 11264) and is long enough at window 26.
        var probs = Seq((0.45f, 2), (Speech, 10), (Between, 10), (Silence, 10));
        Assert.Equal([S(1024 - 480, 11264 + 480)], Compute(probs, 32 * 512));
    }

    [Fact]
    public void SegmentNotLongerThanMinSpeech_IsDropped()
    {
        // 7 windows (3584 samples) are not > 4000: dropped; 8 windows (4096) are kept.
        var probs = Seq((Silence, 5), (Speech, 7), (Silence, 10), (Speech, 8), (Silence, 10));
        Assert.Equal([S(11264 - 480, 15360 + 480)], Compute(probs, 40 * 512));
    }

    [Fact]
    public void SpeechOpenAtTheEnd_RunsToTheEndOfAudio_ClampedThere()
    {
        // 20 windows, the last partial (9828 = 19 * 512 + 100). Speech from window 4 is still open:
        //   if current_speech and (audio_length_samples - current_speech['start']) > min_speech_samples:
        //       current_speech['end'] = audio_length_samples
        // and the pad is clamped: min(9828, 9828 + 480).
        var probs = Seq((Silence, 4), (Speech, 16));
        Assert.Equal([S(2048 - 480, 9828)], Compute(probs, 9828));
    }

    [Fact]
    public void TrailingSilenceShorterThanMinSilence_CountsAsSpeechToTheEnd()
    {
        // Silence at windows 11..14 has not reached 1600 samples when the audio ends, so the
        // open segment [512, ...) ends at the audio's end, not at the silence.
        var probs = Seq((Silence, 1), (Speech, 10), (Silence, 4));
        Assert.Equal([S(32, 15 * 512)], Compute(probs, 15 * 512));
    }

    [Fact]
    public void ShortSpeechOpenAtTheEnd_IsDropped()
    {
        // 4608 - 2048 = 2560 samples, not > 4000.
        Assert.Empty(Compute(Seq((Silence, 4), (Speech, 5)), 9 * 512));
    }

    [Fact]
    public void StartPadding_IsClampedAtZero()
    {
        var probs = Seq((Speech, 12), (Silence, 10));
        Assert.Equal([S(0, 6144 + 480)], Compute(probs, 22 * 512));
    }

    [Fact]
    public void EndPadding_IsClampedAtTheAudioLength()
    {
        // pad 1600 > min silence 800: speech [512, 5632) ends at window 13 (1024 >= 800);
        // 14 windows, total 6666: end = min(6666, 5632 + 1600), start = max(0, 512 - 1600).
        var options = new VadOptions { SpeechPadMs = 100, MinSilenceMs = 50 };
        var probs = Seq((Silence, 1), (Speech, 10), (Silence, 3));
        Assert.Equal([S(0, 6666)], Compute(probs, 6666, options));
    }

    [Fact]
    public void NeighboursCloserThanTwicePad_ShareTheGap()
    {
        // pad 1600. A = [1024, 7168) (silence from window 14 is 2048 >= 1600 at window 18),
        // B = [9728, 15872). Gap 2560 < 3200:
        //   speech['end'] += int(silence_duration // 2)
        //   speeches[i+1]['start'] = int(max(0, speeches[i+1]['start'] - silence_duration // 2))
        var options = new VadOptions { SpeechPadMs = 100 };
        var probs = Seq((Silence, 2), (Speech, 12), (Silence, 5), (Speech, 12), (Silence, 9));
        Assert.Equal([S(0, 7168 + 1280), S(9728 - 1280, 15872 + 1600)], Compute(probs, 40 * 512, options));
    }

    [Fact]
    public void NeighboursAtLeastTwicePadApart_AreEachPaddedFully()
    {
        // Same segments with the default pad 480: gap 2560 >= 960.
        var probs = Seq((Silence, 2), (Speech, 12), (Silence, 5), (Speech, 12), (Silence, 9));
        Assert.Equal([S(1024 - 480, 7168 + 480), S(9728 - 480, 15872 + 480)], Compute(probs, 40 * 512));
    }

    [Fact]
    public void MaxSpeech_SplitsAtAnInnerSilence_KeepingTheShortPart()
    {
        // max 1 s: max_speech_samples = 16000 - 512 - 960 = 14528. Speech from 512; a silence
        // starts at window 5 (temp_end 2560), stays between thresholds, and speech resumes at
        // window 9: possible_ends = [(2560, 2048)] (2048 > 1568). At window 30 (15360 - 512 > 14528):
        //   current_speech['end'] = prev_end; next_start = prev_end + dur
        //   if next_start < prev_end + window_size_samples * i: current_speech['start'] = next_start
        // so [512, 2560) is emitted although shorter than min speech (no check on split parts),
        // and speech goes on from 4608 until the silence at window 31 (temp_end 15872).
        var options = new VadOptions { MaxSpeechSeconds = 1 };
        var probs = Seq((Silence, 1), (Speech, 4), (Silence, 1), (Between, 3), (Speech, 22), (Silence, 10));
        Assert.Equal([S(32, 2560 + 480), S(4608 - 480, 15872 + 480)], Compute(probs, 41 * 512, options));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void MaxSpeech_SplitsAtTheLongestSilence_OrTheLastWhenConfigured(bool useLongest)
    {
        // Silences inside speech: (2560, dur 2560) ending at window 10, (7680, dur 2048) ending at 19.
        // At window 30 the segment from 512 is too long.
        //   longest: prev_end 2560, next_start 5120; (7680, 2048) is kept (7680 > 5120) but the speech
        //            ends by silence (temp_end 15872) before another split is due.
        //   last:    prev_end 7680, next_start 9728.
        var options = new VadOptions { MaxSpeechSeconds = 1, UseMaxPossibleSilenceAtMaxSpeech = useLongest };
        var probs = Seq((Silence, 1), (Speech, 4), (Silence, 1), (Between, 4), (Speech, 5), (Silence, 1), (Between, 3),
            (Speech, 12), (Silence, 10));
        SpeechSegment[] expected = useLongest
            ? [S(32, 2560 + 480), S(5120 - 480, 15872 + 480)]
            : [S(32, 7680 + 480), S(9728 - 480, 15872 + 480)];
        Assert.Equal(expected, Compute(probs, 41 * 512, options));
    }

    [Fact]
    public void MaxSpeech_WithoutAnyInnerSilence_SplitsHard_AndNeighboursShareTheGap()
    {
        // No possible end: cut at window 30 (end 15360), untrigger, `continue`; speech restarts at
        // window 31 (15872); next cut when 512 * i - 15872 > 14528, at window 60 (30720); restart at
        // 31232 and run to the end (36352). Gaps of 512 < 960 are shared (256 each side);
        // the last end is clamped to the audio.
        var options = new VadOptions { MaxSpeechSeconds = 1 };
        var probs = Seq((Silence, 1), (Speech, 70));
        Assert.Equal(
            [S(32, 15360 + 256), S(15872 - 256, 30720 + 256), S(31232 - 256, 36352)],
            Compute(probs, 71 * 512, options));
    }

    [Fact]
    public void HardSplitAtTheLastWindow_EndPaddingIsClampedToTheAudioLength()
    {
        // pad 160, max_speech_samples = 16000 - 512 - 320 = 15168: the cut falls on the last window
        // (i = 31, 15872 - 512 > 15168), whose audio is only 100 samples long:
        //   speech['end'] = int(min(audio_length_samples, speech['end'] + speech_pad_samples))
        var options = new VadOptions { MaxSpeechSeconds = 1, SpeechPadMs = 10 };
        var probs = Seq((Silence, 1), (Speech, 31));
        Assert.Equal([S(512 - 160, 31 * 512 + 100)], Compute(probs, 31 * 512 + 100, options));
    }

    [Fact]
    public void NoWindows_NoSegments()
    {
        Assert.Empty(Compute([], 0));
    }

    [Fact]
    public void TotalSamplesThatNeedAnotherNumberOfWindows_IsRejected()
    {
        var probs = Seq((Speech, 10));
        Assert.Throws<ArgumentException>(() => Compute(probs, 10 * 512 + 1));
        Assert.Throws<ArgumentException>(() => Compute(probs, 9 * 512));
    }

    public static TheoryData<int> Seeds() => [.. Enumerable.Range(1, 40)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomSequences_MatchALiteralPortOfUpstream(int seed)
    {
        var random = new Random(seed);
        for (int round = 0; round < 25; round++)
        {
            var options = RandomOptions(random);
            int windows = random.Next(0, 600);
            var probs = TestAudio.Probabilities(random, windows);
            long total = windows == 0 ? 0 : (long)windows * 512 - (random.Next(2) == 0 ? 0 : random.Next(1, 512));

            var expected = UpstreamReference.GetSpeechTimestamps(
                probs, total,
                threshold: options.Threshold,
                minSpeechDurationMs: options.MinSpeechMs,
                maxSpeechDurationS: options.MaxSpeechSeconds ?? double.PositiveInfinity,
                minSilenceDurationMs: options.MinSilenceMs,
                speechPadMs: options.SpeechPadMs,
                negThreshold: options.NegThreshold,
                minSilenceAtMaxSpeech: options.MinSilenceAtMaxSpeechMs,
                useMaxPossSilAtMaxSpeech: options.UseMaxPossibleSilenceAtMaxSpeech);

            var actual = Compute(probs, total, options).Select(s => (s.Start, s.End)).ToList();
            Assert.Equal(expected, actual);
        }
    }

    internal static VadOptions RandomOptions(Random random) => new()
    {
        Threshold = new[] { 0.3, 0.5, 0.5, 0.7 }[random.Next(4)],
        NegThreshold = new double?[] { null, null, 0.2, 0.25 }[random.Next(4)],
        // 32 and 64 ms are whole windows (512, 1024 samples): they exercise the strict/non-strict comparisons.
        MinSpeechMs = new[] { 0, 32, 64, 100, 250, 500 }[random.Next(6)],
        MinSilenceMs = new[] { 0, 32, 64, 50, 100, 300 }[random.Next(6)],
        SpeechPadMs = new[] { 0, 10, 30, 30, 100, 250 }[random.Next(6)],
        MaxSpeechSeconds = new double?[] { null, 0.6, 1, 2.5 }[random.Next(4)],
        MinSilenceAtMaxSpeechMs = new[] { 98.0, 30, 64, 200 }[random.Next(4)],
        UseMaxPossibleSilenceAtMaxSpeech = random.Next(2) == 0,
    };
}
