using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Workers.Core.Signals;
using Workers.Fleet.Gpus;
using Workers.Postgres.Fleet;
using Workers.Testing;

namespace Workers.Fleet.Tests.Gpus;

/// <summary>GPU telemetry: nvidia-smi's numbers read robustly, and a sampler that never stops the node (issue "Fleet", item 2).</summary>
public sealed class GpuTelemetryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-gpu-telemetry-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void Parses_rows_with_spaces_and_a_trailing_newline()
    {
        var (gpus, skipped) = NvidiaSmi.ParseTelemetry(
            "0, GPU-aaaa, NVIDIA H100 80GB HBM3, 87, 40960, 81559, 64\n" +
            "1,GPU-bbbb,NVIDIA H100 80GB HBM3,0,3,81559,31\r\n");
        Assert.Empty(skipped);
        Assert.Equal(
            [new GpuTelemetry(0, "GPU-aaaa", "NVIDIA H100 80GB HBM3", 87, 40960, 81559, 64), new GpuTelemetry(1, "GPU-bbbb", "NVIDIA H100 80GB HBM3", 0, 3, 81559, 31)],
            gpus);
    }

    [Fact]
    public void Not_available_values_are_null_and_a_name_with_a_comma_survives()
    {
        var (gpus, skipped) = NvidiaSmi.ParseTelemetry("3, GPU-x, Odd, Name Inc, [N/A], [Not Supported], 16384, N/A");
        Assert.Empty(skipped);
        Assert.Equal(new GpuTelemetry(3, "GPU-x", "Odd, Name Inc", null, null, 16384, null), Assert.Single(gpus));
    }

    [Fact]
    public void Units_left_on_numbers_and_decimals_are_read()
    {
        var (gpus, _) = NvidiaSmi.ParseTelemetry("0, GPU-a, A10, 12 %, 1024 MiB, 23028 MiB, 45.5");
        Assert.Equal(new GpuTelemetry(0, "GPU-a", "A10", 12, 1024, 23028, 45.5), Assert.Single(gpus));
    }

    [Fact]
    public void Bad_lines_are_skipped_and_returned()
    {
        var (gpus, skipped) = NvidiaSmi.ParseTelemetry(
            "index, uuid, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB], temperature.gpu\n" +
            "No devices were found\n" +
            "0, GPU-a, A10, 12, 1024, 23028\n" +          // a field short
            "x, GPU-a, A10, 12, 1024, 23028, 40\n" +       // index not a number
            "1, GPU-b, A10, lots, 1024, 23028, 40\n" +     // utilization not a number
            "2, , A10, 1, 1024, 23028, 40\n" +             // no uuid
            "\n" +
            "4, GPU-d, A10, 1, 2, 3, 4\n" +
            "4, GPU-e, A10, 1, 2, 3, 4\n");                // index seen already
        Assert.Equal(new GpuTelemetry(4, "GPU-d", "A10", 1, 2, 3, 4), Assert.Single(gpus));
        Assert.Equal(7, skipped.Count);
        Assert.StartsWith("index, uuid", skipped[0]);
    }

    [Fact]
    public async Task A_fake_nvidia_smi_is_asked_the_telemetry_query_and_answers_are_parsed()
    {
        var smi = Path.Combine(_dir, "nvidia-smi");
        File.WriteAllText(smi, "#!/bin/sh\necho \"$*\" > \"$(dirname \"$0\")/args\"\necho '0, GPU-a, A10, 5, 100, 23028, 40'\n");
        File.SetUnixFileMode(smi, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var result = await NvidiaSmi.QueryTelemetryAsync(smi, CancellationToken.None);
        Assert.Null(result.Problem);
        Assert.Equal(new GpuTelemetry(0, "GPU-a", "A10", 5, 100, 23028, 40), Assert.Single(result.Gpus));
        Assert.Equal("--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total,temperature.gpu --format=csv,noheader,nounits",
            File.ReadAllText(Path.Combine(_dir, "args")).Trim());
    }

    [Fact]
    public async Task A_missing_nvidia_smi_is_a_problem_not_an_exception()
    {
        var result = await NvidiaSmi.QueryTelemetryAsync(Path.Combine(_dir, "missing", "nvidia-smi"), CancellationToken.None);
        Assert.Empty(result.Gpus);
        Assert.Contains("could not be started", result.Problem);
    }

    [Fact]
    public async Task A_sample_upserts_every_gpu_with_the_node_and_the_clock()
    {
        var time = new FakeTimeProvider();
        var written = new List<GpuSample>();
        var sampler = new GpuTelemetrySampler("node-a", TimeSpan.FromSeconds(15),
            _ => Task.FromResult(new GpuTelemetryResult([new GpuTelemetry(0, "GPU-a", "A10", 5, 100, 200, 40), new GpuTelemetry(1, "GPU-b", "A10", null, null, 200, null)], null, [])),
            (s, _) => { written.Add(s); return Task.CompletedTask; }, time, NullLogger.Instance);
        Assert.Equal(2, await sampler.SampleOnceAsync(CancellationToken.None));
        var at = time.GetUtcNow().UtcDateTime;
        Assert.Equal(
            [new GpuSample("node-a", 0, "GPU-a", "A10", 5, 100, 200, 40, at), new GpuSample("node-a", 1, "GPU-b", "A10", null, null, 200, null, at)],
            written);
    }

    [Fact]
    public async Task Failures_are_logged_once_and_never_stop_the_sampler()
    {
        var calls = 0;
        var upserts = 0;
        var log = new ListLogger(); // what is under test is what the operator reads: each failure warned once, then "sampling again"
        var thirdUpsert = new TestSignal("third upsert");
        var sampler = new GpuTelemetrySampler("node-a", TimeSpan.FromMilliseconds(20),
            _ => ++calls switch
            {
                1 => throw new InvalidOperationException("driver gone"),
                2 => Task.FromResult(new GpuTelemetryResult([], "nvidia-smi did not answer within 15 s", [])),
                3 => Task.FromResult(new GpuTelemetryResult([], "nvidia-smi did not answer within 15 s", [])),
                _ => Task.FromResult(new GpuTelemetryResult([new GpuTelemetry(0, "GPU-a", "A10", 1, 2, 3, 4)], null, [])),
            },
            (_, _) =>
            {
                if (++upserts == 1) throw new TimeoutException("database down");
                if (upserts == 3) thirdUpsert.Signal();
                return Task.CompletedTask;
            },
            TimeProvider.System, log);
        using var cts = new CancellationTokenSource();
        var run = sampler.RunAsync(cts.Token);
        await thirdUpsert.WaitAsync(TimeSpan.FromSeconds(20));
        await cts.CancelAsync();
        await run; // cancellation ends it quietly
        Assert.True(upserts >= 3, $"only {upserts} upserts in {calls} samples");
        var warnings = log.Lines.Where(l => l.Level == LogLevel.Warning).Select(l => l.Message).ToList();
        Assert.Equal(3, warnings.Count); // the throw, the timeout (once, though it happened twice), the database
        Assert.Contains("driver gone", warnings[0]);
        Assert.Contains("did not answer", warnings[1]);
        Assert.Contains("database down", warnings[2]);
        Assert.Contains(log.Lines, l => l.Level == LogLevel.Information && l.Message.Contains("sampling again"));
    }

    [Fact]
    public async Task The_first_sample_is_taken_at_once()
    {
        var sampled = new TaskCompletionSource();
        var sampler = new GpuTelemetrySampler("node-a", TimeSpan.FromHours(1),
            _ => { sampled.TrySetResult(); return Task.FromResult(new GpuTelemetryResult([], null, [])); },
            (_, _) => Task.CompletedTask, TimeProvider.System, NullLogger.Instance);
        using var cts = new CancellationTokenSource();
        var run = sampler.RunAsync(cts.Token);
        await sampled.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        await run;
    }

    private sealed class ListLogger : ILogger
    {
        private readonly List<(LogLevel Level, string Message)> _lines = [];

        public IReadOnlyList<(LogLevel Level, string Message)> Lines { get { lock (_lines) return [.. _lines]; } }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines) _lines.Add((logLevel, formatter(state, exception)));
        }
    }
}
