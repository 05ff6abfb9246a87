using Workers.Core.Options;

namespace Workers.Core.Tests.Options;

/// <summary>Issue 14: the Fleet section's ranges are declared once ([Range]) and every problem is listed with its full name.</summary>
public sealed class FleetOptionsTests
{
    [Fact]
    public void The_defaults_are_valid()
    {
        Assert.Empty(new FleetOptions().Validate());
        Assert.Equal(Environment.MachineName, new FleetOptions().Node);
    }

    [Fact]
    public void Every_out_of_range_value_is_listed_with_its_setting_name_range_and_value()
    {
        var problems = new FleetOptions { MinFreeDiskMb = -1, DrainSeconds = 86_401, DecoderThreads = 257, MaxDecodedMb = 0, MaxDecodedInMemoryMb = -1, DecodeGroupSeconds = -1, TelemetrySeconds = 0, NodeName = " " }.Validate();
        Assert.Equal(
        [
            "Fleet:MinFreeDiskMb must be within 0..1099511627776 (is -1).",
            "Fleet:DrainSeconds must be within 0..86400 (is 86401).",
            "Fleet:DecoderThreads must be within 0..256 (is 257).",
            "Fleet:MaxDecodedMb must be within 1..1073741824 (is 0).",
            "Fleet:MaxDecodedInMemoryMb must be within 0..1073741824 (is -1).",
            "Fleet:DecodeGroupSeconds must be within 0..86400 (is -1).",
            "Fleet:TelemetrySeconds must be within 0.1..86400 (is 0).",
            "Fleet:NodeName must be a name, not blank; leave it empty for the machine name.",
        ], problems);
    }

    [Fact]
    public void A_value_that_does_not_parse_is_described_with_the_same_range()
    {
        Assert.Equal("a whole number within 0..256", SettingRanges.Describe(typeof(FleetOptions).GetProperty(nameof(FleetOptions.DecoderThreads))!));
        Assert.Equal("a number within 0.1..86400", SettingRanges.Describe(typeof(FleetOptions).GetProperty(nameof(FleetOptions.TelemetrySeconds))!));
        Assert.Equal("a whole number", SettingRanges.Describe(typeof(QueueOptions).GetProperty(nameof(QueueOptions.LeaseSeconds))!));
    }
}
