using Workers.Pipeline.Vad;

namespace Workers.Pipeline.Tests.Vad;

public class VadItemPlannerTests
{
    [Fact]
    public void ThirtyMinuteItem_IsSplitIntoWindowAlignedSubStreams_EachAfterAWarmUp()
    {
        var planner = new VadItemPlanner(new VadOptions()); // 60 s sub-streams, 5 s warm-up
        Assert.Equal(1875, planner.SubStreamWindows);       // 60 * 16000 / 512
        Assert.Equal(157, planner.WarmUpWindows);           // ceil(5 * 16000 / 512)

        var plan = planner.Plan(30 * 60 * 16000L);

        Assert.Equal(30, plan.Length);
        Assert.Equal(new VadSubStreamPlan(0, 0, 0, 960_000), plan[0]);
        Assert.Equal(new VadSubStreamPlan(1, 960_000 - 157 * 512, 960_000, 1_920_000), plan[1]);
        Assert.Equal(new VadSubStreamPlan(29, 27_840_000 - 157 * 512, 27_840_000, null), plan[29]);
        Assert.All(plan, p => Assert.Equal(0, p.ReadStart % 512));
    }

    [Fact]
    public void WarmUpLongerThanWhatPrecedes_StartsAtTheItemStart()
    {
        var planner = new VadItemPlanner(new VadOptions { SubStreamSeconds = 1, WarmUpSeconds = 3 });
        var plan = planner.Plan(3 * 16000);
        Assert.Equal(0, plan[1].ReadStart);
        Assert.Equal(32 * 512, plan[1].CoreStart); // 1 s rounds up to 32 windows
        Assert.Equal(0, plan[2].ReadStart);
    }

    [Theory]
    [InlineData(null, 60.0)]       // length unknown
    [InlineData(960_000L, 60.0)]   // exactly one sub-stream long
    [InlineData(100_000_000L, null)] // splitting off
    public void ItemsThatNeedNoSplit_AreOneStream(long? expectedSamples, double? subStreamSeconds)
    {
        var plan = new VadItemPlanner(new VadOptions { SubStreamSeconds = subStreamSeconds }).Plan(expectedSamples);
        Assert.Equal([new VadSubStreamPlan(0, 0, 0, null)], plan);
    }
}
