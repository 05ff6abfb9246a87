using System.Globalization;
using Workers.Stages;

namespace Workers.Stages.Tests;

/// <summary>FunASR's am.mvn (Kaldi nnet1 text, <c>&lt;AddShift&gt;</c> and <c>&lt;Rescale&gt;</c>), read as its
/// <c>load_cmvn</c> reads it and applied as its <c>apply_cmvn</c> does (issue 15).</summary>
public sealed class KaldiCmvnTests
{
    /// <summary>An am.mvn as FunASR ships it: Splice, AddShift and Rescale components, one line of numbers each.</summary>
    public static string Mvn(double[] shift, double[] scale)
    {
        static string Numbers(double[] v) => string.Join(" ", v.Select(x => x.ToString("R", CultureInfo.InvariantCulture)));
        return $"<Nnet>\n<Splice> {shift.Length} {shift.Length}\n[ 0 ]\n<AddShift> {shift.Length} {shift.Length}\n<LearnRateCoef> 0 [ {Numbers(shift)} ]\n" +
               $"<Rescale> {scale.Length} {scale.Length}\n<LearnRateCoef> 0 [ {Numbers(scale)} ]\n</Nnet>\n";
    }

    [Fact]
    public void Reads_the_shift_and_scale_vectors_and_applies_x_plus_shift_times_scale()
    {
        var cmvn = KaldiCmvn.Parse(Mvn([-8.311879, -8.600912, 1.5], [0.155775, 0.154484, 2]), "am.mvn");

        Assert.Equal(3, cmvn.Width);
        Assert.Equal([-8.311879, -8.600912, 1.5], cmvn.Shift.ToArray());
        Assert.Equal([0.155775, 0.154484, 2], cmvn.Scale.ToArray());
        float[] frames = [10f, 11f, -1f, /**/ 0f, 0f, 0f];
        cmvn.Apply(frames);
        Assert.Equal([(float)((10 - 8.311879) * 0.155775), (float)((11 - 8.600912) * 0.154484), 1f, (float)(-8.311879 * 0.155775), (float)(-8.600912 * 0.154484), 3f], frames);
    }

    [Theory]
    [InlineData("<Nnet>\n<AddShift> 2 2\n<LearnRateCoef> 0 [ 1 2 ]\n</Nnet>", "has no <Rescale> component")]
    [InlineData("<Nnet>\n<Rescale> 2 2\n<LearnRateCoef> 0 [ 1 2 ]\n</Nnet>", "has no <AddShift> component")]
    [InlineData("<AddShift> 3 3\n<LearnRateCoef> 0 [ 1 2 ]\n<Rescale> 2 2\n<LearnRateCoef> 0 [ 1 2 ]", "<AddShift> declares 3 dimensions but its vector has 2 values")]
    [InlineData("<AddShift> 2 2\n<LearnRateCoef> 0 [ 1 x ]\n<Rescale> 2 2\n<LearnRateCoef> 0 [ 1 2 ]", "<AddShift> value 2 is 'x', not a finite number")]
    [InlineData("<AddShift> 2 2\n<LearnRateCoef> 0 [ 1 2 ]\n<Rescale> 2 2\n<LearnRateCoef> 0 [ 1 2", "<Rescale>'s vector is not closed")]
    [InlineData("<AddShift> 2 2\n<LearnRateCoef> 0 [ 1 2 ]\n<Rescale> 3 3\n<LearnRateCoef> 0 [ 1 2 3 ]", "<AddShift> has 2 values but <Rescale> has 3")]
    [InlineData("<AddShift> two\n<LearnRateCoef> 0 [ 1 2 ]", "<AddShift> is not followed by its dimensions")]
    [InlineData("{\"mean\": [1, 2]}", "not a Kaldi CMVN file")]
    public void A_damaged_file_says_what_is_wrong(string text, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => KaldiCmvn.Parse(text, "/models/am.mvn"));
        Assert.StartsWith("/models/am.mvn: ", e.Message);
        Assert.Contains(expected, e.Message);
    }
}
