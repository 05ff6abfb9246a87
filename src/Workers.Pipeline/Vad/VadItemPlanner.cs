namespace Workers.Pipeline.Vad;

/// <summary>
/// Splits a long item into sub-streams that the batcher scores side by side, so one long item
/// still fills K batch rows instead of one.
/// </summary>
/// <remarks>
/// Sub-stream k keeps the windows of [k*L, (k+1)*L) (the last one: to the item's end), but starts
/// reading a warm-up earlier, with fresh model state and zero context like any new stream. The
/// warm-up windows' probabilities are discarded; by the time its own range starts the model has
/// seen the preceding audio, and the context of its first kept window is the real preceding
/// samples. L and the warm-up are whole windows, so every window lands on the same grid as in an
/// unsplit run and the probabilities concatenate into one sequence for the whole item; the
/// segmentation rules then run over the whole item as upstream does. They come close to an
/// unsplit run's, not equal to them: Silero's recurrent state does not settle to the unsplit
/// run's (measured; the figures are on <see cref="VadOptions.WarmUpSeconds"/>), so a longer
/// warm-up buys agreement steadily, and <see cref="VadOptions.SubStreamSeconds"/> null gives the
/// unsplit segments exactly.
/// </remarks>
public sealed class VadItemPlanner
{
    private readonly int _window;

    public VadItemPlanner(VadOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        _window = options.WindowSamples;
        double windowsPerSecond = (double)options.SampleRate / options.WindowSamples;
        if (options.SubStreamSeconds is { } sub)
            SubStreamWindows = (long)Math.Max(1, Math.Ceiling(sub * windowsPerSecond));
        WarmUpWindows = (long)Math.Ceiling(options.WarmUpSeconds * windowsPerSecond);
    }

    /// <summary>The shortest sub-stream, in windows kept (<see cref="VadOptions.SubStreamSeconds"/>); null when items are never split.</summary>
    public long? SubStreamWindows { get; }

    /// <summary>Windows scored and discarded before each sub-stream but the first.</summary>
    public long WarmUpWindows { get; }

    /// <summary>The sub-streams for an item of about <paramref name="expectedSamples"/> samples (null: unknown, one sub-stream).</summary>
    public VadSubStreamPlan[] Plan(long? expectedSamples) => Plan(expectedSamples, SubStreamWindows);

    /// <summary>The sub-streams for an item of about <paramref name="expectedSamples"/> samples, each keeping
    /// <paramref name="subStreamWindows"/> windows but the last (null: never split).</summary>
    public VadSubStreamPlan[] Plan(long? expectedSamples, long? subStreamWindows)
    {
        if (expectedSamples < 0) throw new ArgumentOutOfRangeException(nameof(expectedSamples), expectedSamples, "A length cannot be negative.");
        if (subStreamWindows < 1) throw new ArgumentOutOfRangeException(nameof(subStreamWindows), subStreamWindows, "A sub-stream holds at least one window.");
        if (subStreamWindows is not { } windows || expectedSamples is not { } expected || expected <= windows * _window)
            return [new VadSubStreamPlan(0, 0, 0, null)];

        long length = windows * _window;
        long warmUp = WarmUpWindows * _window;
        int count = checked((int)((expected + length - 1) / length));
        var plan = new VadSubStreamPlan[count];
        for (int k = 0; k < count; k++)
        {
            long coreStart = k * length;
            plan[k] = new VadSubStreamPlan(k, Math.Max(0, coreStart - warmUp), coreStart, k == count - 1 ? null : coreStart + length);
        }
        return plan;
    }
}
