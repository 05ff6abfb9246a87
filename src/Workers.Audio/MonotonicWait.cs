using System.Diagnostics;

namespace Workers.Audio;

/// <summary>
/// Timed waits measured on the monotonic clock. A timed wait on an event may return early when a process's
/// wall clock is shifted: under libfaketime (how the skew tests and the soak run a node 3 minutes off),
/// <c>ManualResetEventSlim.Wait(timeout)</c> and <c>Task.Wait(timeout)</c> return false at once, which turned
/// every guarded open and read of a skewed node into a false "storage hung" failure. Re-arming the wait until
/// <see cref="Stopwatch"/> (CLOCK_MONOTONIC) says the time is up keeps the timeout what it says; on a normal
/// node the first wait decides and the loop never turns. Allocates nothing.
/// </summary>
internal static class MonotonicWait
{
    public static bool Wait(ManualResetEventSlim done, TimeSpan timeout)
    {
        var start = Stopwatch.GetTimestamp();
        while (true)
        {
            var left = timeout - Stopwatch.GetElapsedTime(start);
            if (left <= TimeSpan.Zero) return done.IsSet;
            if (done.Wait(left)) return true;
        }
    }

    public static bool Wait(Task task, TimeSpan timeout)
    {
        var start = Stopwatch.GetTimestamp();
        while (true)
        {
            var left = timeout - Stopwatch.GetElapsedTime(start);
            if (left <= TimeSpan.Zero) return task.IsCompleted;
            if (task.Wait(left)) return true;
        }
    }
}
