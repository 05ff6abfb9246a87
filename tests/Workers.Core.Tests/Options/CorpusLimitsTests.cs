using Workers.Core.Options;

namespace Workers.Core.Tests.Options;

public sealed class CorpusLimitsTests
{
    [Theory]
    [InlineData(1, 8)]         // issue 13: the 4 KB sparse WAV claiming 8 channels at 1 Hz
    [InlineData(1_000_000, 1)] // a sibling: a rate no speech file has, on the other side
    public void Implausible_sample_rates_are_named_with_the_key_to_change(int rate, int channels)
    {
        var reason = CorpusLimits.Default.CheckFormat(rate, channels);
        Assert.NotNull(reason);
        Assert.Contains($"sample rate {rate} Hz is outside 4000-384000 Hz (Corpus:Limits:MinSampleRate / MaxSampleRate)", reason);
    }

    [Fact]
    public void Channel_counts_and_durations_have_ceilings()
    {
        Assert.Null(CorpusLimits.Default.CheckFormat(16000, 64));
        Assert.Contains("65 channels, more than Corpus:Limits:MaxChannels (64)", CorpusLimits.Default.CheckFormat(16000, 65));
        Assert.Null(CorpusLimits.Default.CheckDuration(3600, 1_800_000));
        // A 4 KB file cannot hold an hour: at least 16 bytes a second by default.
        Assert.Contains("in a file of 4096 bytes would be under Corpus:Limits:MinBytesPerSecond (16", CorpusLimits.Default.CheckDuration(3600, 4096));
        Assert.Null(CorpusLimits.Default.CheckDuration(30, 13166)); // 30 s of FLAC silence
        Assert.Contains("over Corpus:Limits:MaxFileSeconds", CorpusLimits.Default.CheckDuration(2e6, null));
        Assert.Null(new CorpusLimits { MinSampleRate = 1 }.CheckFormat(1, 1));
    }

    [Fact]
    public void Validation_lists_every_problem_and_is_part_of_the_corpus_options()
    {
        Assert.Empty(new CorpusLimits().Validate());
        var bad = new CorpusLimits { MinSampleRate = 0, MaxSampleRate = -1, MaxChannels = 0, MaxFileSeconds = double.NaN, MinBytesPerSecond = 0, MaxItemsPerShard = 0 };
        Assert.Equal(6, bad.Validate().Count);
        Assert.Contains(new CorpusOptions { Limits = bad }.Validate(), p => p.StartsWith("Corpus:Limits:MaxItemsPerShard must be at least 1"));
    }
}
