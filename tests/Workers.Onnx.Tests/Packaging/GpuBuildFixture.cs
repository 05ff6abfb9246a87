using System.Diagnostics;

namespace Workers.Onnx.Tests.Packaging;

/// <summary>Publishes the GPU build once, with exactly the command the README gives
/// (<c>dotnet publish src/Workers.Cli -c Release -r linux-x64 -p:WorkersGpu=true -o DIR</c>), from a copy
/// of the sources so the repository's own obj/ (restored for the CPU build) is left alone.</summary>
public sealed class GpuBuildFixture : IAsyncLifetime
{
    private readonly TempDirectory work = new();

    public string Output => Path.Combine(work.Path, "out");

    public string PublishLog { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var source = Path.Combine(work.Path, "src-copy");
        CopySources(RepositoryPaths.Root, source);
        var (code, output) = await Exec.RunAsync("dotnet", source, TimeSpan.FromMinutes(30), null,
            "publish", "src/Workers.Cli", "-c", "Release", "-r", "linux-x64", "-p:WorkersGpu=true", "-o", Output, "-nologo", "-v", "quiet", "-clp:ErrorsOnly");
        PublishLog = output;
        if (code != 0) throw new InvalidOperationException($"GPU publish failed with exit code {code}:\n{output}");
    }

    public Task DisposeAsync()
    {
        work.Dispose();
        return Task.CompletedTask;
    }

    // What a clean clone builds from: the sources and the repository-wide props, without bin/ and obj/.
    private static void CopySources(string root, string destination)
    {
        foreach (var file in new[] { "Directory.Build.props", "Directory.Packages.props", "global.json", "appsettings.json" })
            if (File.Exists(Path.Combine(root, file))) CopyFile(Path.Combine(root, file), Path.Combine(destination, file));
        var src = Path.Combine(root, "src");
        foreach (var file in Directory.EnumerateFiles(src, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(root, file);
            var parts = relative.Split(Path.DirectorySeparatorChar);
            if (parts.Contains("bin") || parts.Contains("obj")) continue;
            CopyFile(file, Path.Combine(destination, relative));
        }
    }

    private static void CopyFile(string from, string to)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        File.Copy(from, to);
    }
}

/// <summary>Runs a program to completion, stdout and stderr together, with a time limit.</summary>
internal static class Exec
{
    public static async Task<(int Code, string Output)> RunAsync(string program, string workingDirectory, TimeSpan limit,
        IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        if (environment is not null)
            foreach (var (k, v) in environment) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish within {limit}:\n{output}");
        }
        process.WaitForExit();
        lock (output) return (process.ExitCode, output.ToString());
    }
}
