namespace Workers.Cli.Tests;

/// <summary>Runs `workers` processes with a shifted wall clock (issue 11's skew and soak tests).</summary>
internal static class Faketime
{
    /// <summary>Debian's libfaketime (package libfaketime, installed by ops/setup.sh).</summary>
    public const string Library = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

    /// <summary>The environment that runs a `workers` process (and its children) with its clock shifted by
    /// <paramref name="offset"/> (e.g. "+3m"). Monotonic clocks stay true: timers and timeouts are not shifted.</summary>
    public static void Skew(IDictionary<string, string?> env, string offset)
    {
        env["LD_PRELOAD"] = Library;
        env["FAKETIME"] = offset;
        env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1";
        env["FAKETIME_NO_CACHE"] = "1";
    }
}
