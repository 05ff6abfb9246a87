using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;

namespace Workers.Fleet.Gpus;

/// <summary>What a GPU query found: the GPUs, or why there are none.</summary>
/// <param name="Gpus">The GPUs, in nvidia-smi's order; empty when <paramref name="Problem"/> is set.</param>
/// <param name="Problem">Why nvidia-smi gave no answer (missing, failed, timed out), or null.</param>
/// <param name="Skipped">Output lines that were not a GPU row (kept for the log).</param>
public sealed record GpuQueryResult(IReadOnlyList<GpuInfo> Gpus, string? Problem, IReadOnlyList<string> Skipped);

/// <summary>
/// Asks <c>nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader</c> which
/// GPUs this node has. A node without the tool, or whose driver is broken, simply has none: the
/// caller decides whether that is an error.
/// </summary>
public static class NvidiaSmi
{
    /// <summary>Configuration key of the executable's path.</summary>
    public const string ConfigurationKey = "Fleet:NvidiaSmi";

    /// <summary>The default executable: <c>nvidia-smi</c> found on PATH.</summary>
    public const string DefaultPath = "nvidia-smi";

    public static readonly IReadOnlyList<string> Arguments = ["--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader"];

    /// <summary>The query's timeout. A hung driver makes nvidia-smi hang; we would rather start CPU-only.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public static async Task<GpuQueryResult> QueryAsync(string executable, CancellationToken ct)
    {
        var (output, problem) = await ExecAsync(executable, Arguments, ct);
        if (problem is not null) return Failed(problem);
        var (gpus, skipped) = Parse(output!);
        return new GpuQueryResult(gpus, null, skipped);
    }

    /// <summary>The telemetry query: one row per GPU, numbers without units.</summary>
    public static readonly IReadOnlyList<string> TelemetryArguments =
        ["--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total,temperature.gpu", "--format=csv,noheader,nounits"];

    /// <summary>Samples every GPU's utilization, memory and temperature (<see cref="TelemetryArguments"/>).</summary>
    public static async Task<GpuTelemetryResult> QueryTelemetryAsync(string executable, CancellationToken ct)
    {
        var (output, problem) = await ExecAsync(executable, TelemetryArguments, ct);
        if (problem is not null) return new GpuTelemetryResult([], problem, []);
        var (gpus, skipped) = ParseTelemetry(output!);
        return new GpuTelemetryResult(gpus, null, skipped);
    }

    /// <summary>
    /// Parses telemetry rows, e.g. <c>0, GPU-5b3c..., NVIDIA H100 80GB HBM3, 87, 40960, 81559, 64</c>.
    /// The first field is the index, the second the UUID, the last four the numbers (utilization %,
    /// memory used and total MiB, temperature °C); everything between is the name. A number that
    /// nvidia-smi cannot give (<c>[N/A]</c>, <c>[Not Supported]</c>, <c>N/A</c>) is null; a unit left
    /// on a number (<c>87 %</c>, <c>40960 MiB</c>) is tolerated. Lines that are not a GPU row are
    /// skipped and returned for the log.
    /// </summary>
    public static (IReadOnlyList<GpuTelemetry> Gpus, IReadOnlyList<string> Skipped) ParseTelemetry(string output) =>
        ParseRows(output, 4, (index, uuid, name, n) =>
            TryNumber(n[0], out var util) && TryNumber(n[1], out var used) && TryNumber(n[2], out var total) && TryNumber(n[3], out var temp)
                ? new GpuTelemetry(index, uuid, name, util, used, total, temp)
                : null);

    /// <summary>"87", "87.5", "87 %", "40960 MiB", "64 C" (the number), or "[N/A]", "N/A", "[Not Supported]" (null).</summary>
    private static bool TryNumber(string field, out double? value)
    {
        value = null;
        if (field.StartsWith('[') && field.EndsWith(']')) return true;
        if (field.Equals("N/A", StringComparison.OrdinalIgnoreCase)) return true;
        var end = field.Length;
        while (end > 0 && !char.IsAsciiDigit(field[end - 1])) end--; // a unit: %, MiB, C
        if (end == 0 || (end < field.Length && field[end] != ' ' && field[end] != '%')) return false;
        if (!double.TryParse(field.AsSpan(0, end), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v)) return false;
        value = v;
        return true;
    }

    /// <summary>Runs nvidia-smi: its stdout, or why there is none (missing, failed, timed out).</summary>
    private static async Task<(string? Output, string? Problem)> ExecAsync(string executable, IReadOnlyList<string> arguments, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi) ?? throw new Win32Exception("Process.Start returned no process"); }
        catch (Win32Exception e) { return (null, $"{executable} could not be started ({e.Message})"); }
        using (p)
        {
            p.StandardInput.Close();
            var stdout = p.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var stderr = p.StandardError.ReadToEndAsync(CancellationToken.None);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(Timeout);
            try { await p.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
                ct.ThrowIfCancellationRequested();
                return (null, $"{executable} did not answer within {Timeout.TotalSeconds:0} s");
            }
            var output = await stdout;
            if (p.ExitCode != 0)
            {
                var why = FirstLine(await stderr) ?? FirstLine(output) ?? "no output";
                return (null, $"{executable} exited with code {p.ExitCode}: {why}");
            }
            return (output, null);
        }
    }

    /// <summary>
    /// Parses the CSV rows, e.g. <c>0, GPU-5b3c..., NVIDIA H100 80GB HBM3, 81559 MiB</c>. The first
    /// field is the index, the second the UUID, the last the memory; everything between is the name
    /// (so a name containing a comma survives). Lines that are not a GPU row (a header, "No devices
    /// were found", blank) are skipped and returned for the log.
    /// </summary>
    public static (IReadOnlyList<GpuInfo> Gpus, IReadOnlyList<string> Skipped) Parse(string output) =>
        ParseRows(output, 1, (index, uuid, name, n) => TryMemory(n[0], out var memory) ? new GpuInfo(index, uuid, name, memory) : null);

    /// <summary>
    /// The row format both queries share: <c>index, uuid, name..., then <paramref name="trailing"/> fields</c>,
    /// the name being everything between (commas and all). <paramref name="row"/> makes a GPU of the
    /// trailing fields, or null if they are not what the query asks for. A line that is not such a
    /// row, or repeats an index already read, is skipped and returned for the log.
    /// </summary>
    private static (IReadOnlyList<T> Gpus, IReadOnlyList<string> Skipped) ParseRows<T>(string output, int trailing,
        Func<int, string, string, string[], T?> row) where T : class
    {
        var gpus = new List<T>();
        var indexes = new HashSet<int>();
        var skipped = new List<string>();
        foreach (var raw in output.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0) continue;
            var f = line.Split(',', StringSplitOptions.TrimEntries);
            if (f.Length >= 3 + trailing
                && int.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                && f[1].Length > 0
                && string.Join(", ", f[2..^trailing]) is { Length: > 0 } name
                && row(index, f[1], name, f[^trailing..]) is { } gpu
                && indexes.Add(index))
                gpus.Add(gpu);
            else
                skipped.Add(line);
        }
        return (gpus, skipped);
    }

    /// <summary>"81559 MiB", "81559", or "[N/A]" / "[Not Supported]" (null).</summary>
    private static bool TryMemory(string field, out long? mib)
    {
        mib = null;
        if (field.StartsWith('[') && field.EndsWith(']')) return true;
        var number = field.EndsWith("MiB", StringComparison.OrdinalIgnoreCase) ? field[..^3].TrimEnd() : field;
        if (!long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var m)) return false;
        mib = m;
        return true;
    }

    private static string? FirstLine(string s) =>
        s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();

    private static GpuQueryResult Failed(string problem) => new([], problem, []);
}
