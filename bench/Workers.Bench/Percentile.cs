namespace Workers.Bench;

/// <summary>The one percentile definition the benches print (nearest rank, like SileroBench's p90).</summary>
internal static class Percentile
{
    /// <summary>The smallest value with at least <paramref name="q"/> of <paramref name="sorted"/> (ascending, not empty) at or below it.</summary>
    public static double Of(double[] sorted, double q) =>
        sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
}
