using Workers.Testing;

namespace Workers.Cli.Tests.Hosting;

/// <summary>
/// Issue 14: commands take typed options the host bound and validated when it started; none reads
/// configuration in its body. So a bad value of a setting a command uses is exit 2, naming the setting
/// and what it accepts, before the command's body has done anything: `run` has not planned the node or
/// waited for the database (the connection string points nowhere: a body that ran would wait for it),
/// `worker` has not started its slot, `demo` has not fetched models or generated audio. Before, `run`
/// passed Inference:ExecutionProvider to its workers unchecked (each failed in turn), the worker bound
/// Pipelines:NAME in its loader (a value that did not parse was an InvalidOperationException with a stack
/// trace), and `demo --dashboard off` never looked at the Dashboard section.
/// </summary>
public sealed class ValidateOnStartTests
{
    public static TheoryData<string, string, string, string> BadValues => new()
    {
        // command, setting, value, expected message
        { "run", "Inference:ExecutionProvider", "gpu", "Inference:ExecutionProvider must be one of Auto, Cuda, Cpu (is 'gpu')" },
        { "run", "Inference:DeviceId", "-1", "Inference:DeviceId must be >= 0 (is -1)" },
        { "worker", "Inference:GpuMemLimit", "0", "Inference:GpuMemLimit must be a positive number of bytes, or unset (is 0)" },
        { "worker", "Pipelines:vad:Threshold", "1.5", "Pipelines:vad:Threshold must be within 0..1 (is 1.5)" },
        { "worker", "Pipelines:strict:Threshold", "high", "Pipelines:strict:Threshold must be a number" },
        { "worker", "Pipelines:strict:MinSpeechMs", "-1", "Pipelines:strict:MinSpeechMs must be >= 0 (is -1)" },
        { "worker", "Pipelines:strict:BatchSize", "0", "Pipelines:strict:BatchSize must be within 1..4096 (is 0)" },
        { "worker", "Pipelines:strict:Stages:0:BatchSeconds", "lots", "Pipelines:strict:Stages:0:BatchSeconds must be a number" },
        { "demo", "Dashboard:JobWorkers", "many", "Dashboard:JobWorkers must be a whole number" },
        { "demo", "Corpus:ScanTimeoutSeconds", "0", "Corpus:ScanTimeoutSeconds must be at least 1 (is 0)" },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public async Task A_bad_setting_a_command_uses_is_exit_2_before_its_body_runs(string command, string setting, string value, string expected)
    {
        var env = WorkersProcess.Env("Host=127.0.0.1;Port=1;Username=nobody;Timeout=1", Path.Combine(Path.GetTempPath(), "workers-validate-on-start"));
        env[setting.Replace(":", "__")] = value;
        string[] args = command switch
        {
            "run" => ["run", "--gpus", "none", "--cpu-workers", "1", "--until-idle"],
            "worker" => ["worker", "--slot", "0"],
            _ => ["demo", "--minutes", "0.2", "--dashboard", "off", "--folder", Path.Combine(Path.GetTempPath(), "workers-validate-on-start-demo")],
        };
        var r = await WorkersProcess.RunAsync(env, TimeSpan.FromMinutes(1), args);
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains(expected, r.StdErr);
        Assert.DoesNotContain("   at ", r.StdErr); // one clear message, no stack trace
        // Nothing of the body ran.
        Assert.DoesNotContain("Node plan", r.StdErr);
        Assert.DoesNotContain("Worker slot", r.StdErr);
        Assert.DoesNotContain("Generating", r.StdOut);
        Assert.DoesNotContain("models:", r.StdErr);
    }
}
