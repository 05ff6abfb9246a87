using Workers.Testing;

namespace Workers.Cli.Tests.Hosting;

/// <summary>
/// Issue 14: every setting is bound and validated in one place when the host starts. Before,
/// `workers worker` int.Parse'd Fleet:* (a typo was a FormatException naming no setting, exit 1),
/// and Fleet:Restart:* and Fleet:TelemetrySeconds were read late or not checked. Now a bad value of
/// any Fleet:* setting is exit 2 with the setting's full name and what it accepts, before anything
/// starts. No database is reached: the connection string points nowhere.
/// </summary>
public sealed class OptionsErrorsTests
{
    private static readonly string[] Run = ["run", "--gpus", "none", "--cpu-workers", "1", "--until-idle"];
    private static readonly string[] Worker = ["worker", "--slot", "0"];

    public static TheoryData<string, string, string, string> BadValues => new()
    {
        // command, setting, value, expected message
        { "run", "Fleet:MinFreeDiskMb", "lots", "Fleet:MinFreeDiskMb must be a whole number within 0..1099511627776 (is 'lots')" },
        { "run", "Fleet:MinFreeDiskMb", "-1", "Fleet:MinFreeDiskMb must be within 0..1099511627776 (is -1)" },
        { "run", "Fleet:DrainSeconds", "ten", "Fleet:DrainSeconds must be a whole number within 0..86400 (is 'ten')" },
        { "run", "Fleet:DrainSeconds", "-5", "Fleet:DrainSeconds must be within 0..86400 (is -5)" },
        { "run", "Fleet:DecoderThreads", "abc", "Fleet:DecoderThreads must be a whole number within 0..256 (is 'abc')" },
        { "run", "Fleet:DecoderThreads", "300", "Fleet:DecoderThreads must be within 0..256 (is 300)" },
        { "run", "Fleet:MaxDecodedMb", "2GB", "Fleet:MaxDecodedMb must be a whole number within 1..1073741824 (is '2GB')" },
        { "run", "Fleet:MaxDecodedMb", "0", "Fleet:MaxDecodedMb must be within 1..1073741824 (is 0)" },
        { "run", "Fleet:TelemetrySeconds", "often", "Fleet:TelemetrySeconds must be a number within 0.1..86400 (is 'often')" },
        { "run", "Fleet:TelemetrySeconds", "0", "Fleet:TelemetrySeconds must be within 0.1..86400 (is 0)" },
        { "run", "Fleet:NodeName", " ", "Fleet:NodeName must be a name, not blank" },
        { "run", "Fleet:Restart:BaseDelay", "soon", "Fleet:Restart:BaseDelay must be a duration (hh:mm:ss) (is 'soon')" },
        { "run", "Fleet:Restart:BaseDelay", "00:00:00", "Fleet:Restart:BaseDelay must be a positive duration" },
        { "run", "Fleet:Restart:MaxDelay", "later", "Fleet:Restart:MaxDelay must be a duration (hh:mm:ss) (is 'later')" },
        { "run", "Fleet:Restart:MaxDelay", "00:00:00.5", "Fleet:Restart:MaxDelay must be at least Fleet:Restart:BaseDelay" },
        { "run", "Fleet:Restart:MaxCrashes", "many", "Fleet:Restart:MaxCrashes must be a whole number (is 'many')" },
        { "run", "Fleet:Restart:MaxCrashes", "0", "Fleet:Restart:MaxCrashes must be at least 1" },
        { "run", "Fleet:Restart:Window", "a while", "Fleet:Restart:Window must be a duration (hh:mm:ss) (is 'a while')" },
        { "run", "Fleet:Restart:Window", "00:00:00", "Fleet:Restart:Window must be a positive duration" },
        // The worker process validates the Fleet settings it reads too (it is started by `run`, or by hand).
        { "worker", "Fleet:DecoderThreads", "four", "Fleet:DecoderThreads must be a whole number within 0..256 (is 'four')" },
        { "worker", "Fleet:MaxDecodedMb", "-3", "Fleet:MaxDecodedMb must be within 1..1073741824 (is -3)" },
        { "worker", "Fleet:MaxDecodedInMemoryMb", "lots", "Fleet:MaxDecodedInMemoryMb must be a whole number within 0..1073741824 (is 'lots')" },
        { "worker", "Fleet:NodeName", "  ", "Fleet:NodeName must be a name, not blank" },
        { "worker", "Fleet:Pipelines", "nosuch", "Fleet:Pipelines names 'nosuch', but there is no Pipelines:nosuch section" },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public async Task A_bad_Fleet_setting_is_exit_2_naming_the_setting_and_what_it_accepts(string command, string setting, string value, string expected)
    {
        var r = await WorkersProcess.RunAsync(Env((setting, value)), command == "run" ? Run : Worker);
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains(expected, r.StdErr);
        Assert.DoesNotContain("FormatException", r.StdErr);
        Assert.DoesNotContain("   at ", r.StdErr); // one clear message, no stack trace
    }

    [Fact]
    public async Task Every_problem_of_every_section_is_listed_at_once()
    {
        var r = await WorkersProcess.RunAsync(Env(("Fleet:DecoderThreads", "x"), ("Fleet:DrainSeconds", "-1"), ("Queue:LeaseSeconds", "soon"),
            ("Queue:HeartbeatSeconds", "0"), ("Audio:ReadTimeout", "never"), ("Retention:BatchSize", "0")), Worker);
        Assert.True(r.ExitCode == 2, r.ToString());
        foreach (var expected in new[]
        {
            "Fleet:DecoderThreads must be a whole number within 0..256 (is 'x')", "Fleet:DrainSeconds must be within 0..86400 (is -1)",
            "Queue:LeaseSeconds must be a whole number (is 'soon')", "Queue:HeartbeatSeconds must be at least 1 (is 0)",
            "Audio:ReadTimeout must be a duration (hh:mm:ss) (is 'never')", "Retention:BatchSize must be within 1..100000 (is 0)",
        })
            Assert.Contains(expected, r.StdErr);
    }

    private static Dictionary<string, string?> Env(params (string Setting, string Value)[] settings)
    {
        var env = WorkersProcess.Env("Host=127.0.0.1;Port=1;Username=nobody;Timeout=1", Path.Combine(Path.GetTempPath(), "workers-options-errors"));
        foreach (var (setting, value) in settings) env[setting.Replace(":", "__")] = value;
        return env;
    }
}
