using System.Globalization;

namespace Workers.Pipeline.Processing;

/// <summary>A file range that was processed, with something a person should know (the file grew since enqueue).</summary>
public readonly record struct ItemWarning(int FileIndex, double StartSeconds, double EndSeconds, string Message);

/// <summary>
/// Compares an item's decoded length with what was enqueued (issue 13). Every second enqueued ends
/// in a succeeded shard's results or a listed failure, so:
/// <list type="bullet">
/// <item>A file that is shorter now (truncated or replaced after enqueue) gives an
///   <see cref="ItemFailure"/> for the range it no longer holds, with the reason; the audio it still
///   holds is processed as usual. Processed plus failed seconds stay equal to the enqueued ones.</item>
/// <item>A file that is longer now is processed up to what was enqueued (its shards were planned for
///   that) and gives an <see cref="ItemWarning"/>: the attempt's log says how much more there is and
///   that re-enqueueing the file processes it. Only a file's last item can tell; it is read up to
///   <see cref="OverreadSeconds"/> past its end to find out.</item>
/// </list>
/// Differences up to <see cref="ToleranceSeconds"/> are not reported: an MP3's probed duration counts
/// the encoder's padding (about 50 ms) that the decoder trims.
/// </summary>
public static class ItemLengthCheck
{
    /// <summary>Shorter or longer by at most this is the same length.</summary>
    public const double ToleranceSeconds = 0.25;

    /// <summary>How far past a file's enqueued end its last item is read, to notice that the file grew.</summary>
    public const double OverreadSeconds = 1;

    /// <summary>Whether <paramref name="item"/> ends where its file ended at enqueue.</summary>
    public static bool IsLastOfFile(in ProcessItem item) => item.FileSeconds is { } file && item.EndSeconds >= file - 1e-6;

    /// <summary>Where reading <paramref name="item"/> stops: its end, or a little past it for a file's last item.</summary>
    public static double ReadEnd(in ProcessItem item) => IsLastOfFile(item) ? item.EndSeconds + OverreadSeconds : item.EndSeconds;

    /// <summary>
    /// Judges <paramref name="decodedSamples"/> read from <paramref name="readStart"/> (seconds) up to
    /// <see cref="ReadEnd"/> at <paramref name="sampleRate"/>.
    /// </summary>
    public static (ItemFailure? Shortfall, ItemWarning? Grew) Check(in ProcessItem item, double readStart, long decodedSamples, int sampleRate)
    {
        double decodedEnd = readStart + (double)decodedSamples / sampleRate;
        if (decodedEnd < item.EndSeconds - ToleranceSeconds)
        {
            double missingFrom = Math.Max(item.StartSeconds, decodedEnd);
            string enqueued = item.FileSeconds is { } f ? $" (enqueued as {Seconds(f)} s)" : "";
            return (new ItemFailure(item.FileIndex, missingFrom, item.EndSeconds,
                $"file is shorter than when it was enqueued{enqueued}: its audio ends at {Seconds(decodedEnd)} s, so {Seconds(item.EndSeconds - missingFrom)} s " +
                $"({Seconds(missingFrom)}-{Seconds(item.EndSeconds)} s) could not be processed; was it truncated or replaced after enqueue? " +
                "Restore it and re-run the failed files, or enqueue it again"), null);
        }
        if (IsLastOfFile(item) && decodedEnd > item.EndSeconds + ToleranceSeconds)
        {
            return (null, new ItemWarning(item.FileIndex, item.StartSeconds, item.EndSeconds,
                $"file is longer than when it was enqueued (at least {Seconds(decodedEnd - item.EndSeconds)} s more than the {Seconds(item.EndSeconds)} s planned); " +
                "only the enqueued audio was processed. Enqueue the file again to process the rest"));
        }
        return (null, null);
    }

    private static string Seconds(double s) => s.ToString("0.###", CultureInfo.InvariantCulture);
}
