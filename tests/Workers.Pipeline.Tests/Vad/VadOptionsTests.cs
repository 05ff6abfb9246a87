using Microsoft.Extensions.Configuration;
using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Vad;

public class VadOptionsTests
{
    [Fact]
    public void Defaults_AreUpstreams()
    {
        var options = new VadOptions();
        Assert.Equal(0.5, options.Threshold);
        Assert.Null(options.NegThreshold);
        Assert.Equal(0.35, options.EffectiveNegThreshold, 12);
        Assert.Equal(250, options.MinSpeechMs);
        Assert.Equal(100, options.MinSilenceMs);
        Assert.Equal(30, options.SpeechPadMs);
        Assert.Null(options.MaxSpeechSeconds);
        Assert.Equal(98, options.MinSilenceAtMaxSpeechMs);
        Assert.True(options.UseMaxPossibleSilenceAtMaxSpeech);
        Assert.Equal(512, options.WindowSamples);
        Assert.Equal(64, options.ContextSamples);
        Assert.Equal(16000, options.SampleRate);
        Assert.Equal(5, options.WarmUpSeconds);
        Assert.Empty(options.Validate());
    }

    [Theory]
    [InlineData(0.5, 0.35)]
    [InlineData(0.1, 0.01)] // max(threshold - 0.15, 0.01)
    public void NegThreshold_DefaultsToThresholdMinus015_NotBelow001(double threshold, double expected)
    {
        Assert.Equal(expected, new VadOptions { Threshold = threshold }.EffectiveNegThreshold, 12);
        Assert.Equal(0.05, new VadOptions { Threshold = threshold, NegThreshold = 0.05 }.EffectiveNegThreshold);
    }

    [Fact]
    public void Validate_ListsEveryProblem()
    {
        var options = new VadOptions
        {
            Threshold = 1.5,
            MinSpeechMs = -1,
            ContextSamples = 1000,
            MaxSpeechSeconds = 0.05, // shorter than a window plus two pads
            WarmUpSeconds = -1,
            SubStreamSeconds = 0,
        };
        var problems = options.Validate();
        Assert.Equal(6, problems.Count);
        foreach (var name in new[] { "Threshold", "MinSpeechMs", "ContextSamples", "MaxSpeechSeconds", "WarmUpSeconds", "SubStreamSeconds" })
            Assert.Contains(problems, p => p.StartsWith("Pipelines:vad:" + name, StringComparison.Ordinal));

        var error = Assert.Throws<ArgumentException>(options.ThrowIfInvalid);
        foreach (var problem in problems) Assert.Contains(problem, error.Message);
    }

    [Fact]
    public void NegThresholdAboveThreshold_IsAProblem()
    {
        Assert.Single(new VadOptions { Threshold = 0.5, NegThreshold = 0.6 }.Validate());
    }

    [Fact]
    public void BindsFromThePipelineSection()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Pipelines:vad:Threshold"] = "0.6",
                ["Pipelines:vad:MaxSpeechSeconds"] = "30",
                ["Pipelines:vad:SpeechPadMs"] = "60",
                ["Pipelines:vad:SubStreamSeconds"] = "120",
            })
            .Build();

        var options = configuration.GetSection(VadOptions.Section).Get<VadOptions>()!;

        Assert.Equal(0.6, options.Threshold);
        Assert.Equal(30, options.MaxSpeechSeconds);
        Assert.Equal(60, options.SpeechPadMs);
        Assert.Equal(120, options.SubStreamSeconds);
        Assert.Equal(100, options.MinSilenceMs); // untouched default
        Assert.Empty(options.Validate());
    }
}
