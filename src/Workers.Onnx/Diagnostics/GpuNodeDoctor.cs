using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Workers.Onnx;

/// <summary>One thing a GPU worker needs, found or not.</summary>
/// <param name="Name">What was checked, e.g. <c>cuDNN 9</c>.</param>
/// <param name="Ok">Present and usable.</param>
/// <param name="Detail">What was found, or what is missing and how to get it.</param>
/// <param name="Required">False for checks that only inform (a missing one does not fail the node).</param>
public sealed record DoctorCheck(string Name, bool Ok, string Detail, bool Required = true)
{
    public override string ToString() => $"{(Ok ? "ok     " : Required ? "MISSING" : "note   ")} {Name}: {Detail}";
}

/// <summary>What <see cref="GpuNodeDoctor.Run"/> found; <see cref="CanRunGpuWorkers"/> is the verdict.</summary>
public sealed record DoctorReport(IReadOnlyList<DoctorCheck> Checks)
{
    /// <summary>True when every required check passed, the last being a real CUDA session.</summary>
    public bool CanRunGpuWorkers => Checks.All(c => c.Ok || !c.Required);
}

/// <summary>Can this node run GPU workers? Checks, by name, each piece the CUDA provider of the ONNX
/// Runtime 1.32.0 GPU package needs (the NVIDIA driver's libcuda.so.1, the CUDA 13 runtime libraries it
/// links, cuDNN 9 which it loads at run time, nvidia-smi and the GPUs it sees), then creates a session
/// with <c>ExecutionProvider=cuda</c> exactly as a worker does, so the verdict is ORT's own.</summary>
public static class GpuNodeDoctor
{
    /// <summary>Libraries libonnxruntime_providers_cuda.so links (readelf -d) or loads at run time, with
    /// the Debian/Ubuntu packages of NVIDIA's CUDA repository that ship them.</summary>
    public static readonly IReadOnlyList<(string Check, string Library, string Package)> Libraries =
    [
        ("NVIDIA driver (R580+)", "libcuda.so.1", "the NVIDIA driver: cuda-drivers-580 from NVIDIA's CUDA repository (Debian 12, Ubuntu 24.04); in a container it comes from the host through the NVIDIA Container Toolkit"),
        ("CUDA 13 runtime", "libcudart.so.13", "cuda-cudart-13-0"),
        ("CUDA 13 cuBLAS", "libcublas.so.13", "libcublas-13-0"),
        ("CUDA 13 cuBLASLt", "libcublasLt.so.13", "libcublas-13-0"),
        ("CUDA 13 cuRAND", "libcurand.so.10", "libcurand-13-0"),
        ("cuDNN 9", "libcudnn.so.9", "libcudnn9-cuda-13"),
    ];

    /// <summary>Runs every check. <paramref name="modelPath"/> is the model a worker would load.</summary>
    public static DoctorReport Run(OrtEnvironment environment, string modelPath, OnnxSessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var checks = new List<DoctorCheck>();

        var providerLibrary = Path.Combine(Path.GetDirectoryName(environment.LibraryPath) ?? ".", "libonnxruntime_providers_cuda.so");
        checks.Add(environment.HasCudaProvider && File.Exists(providerLibrary)
            ? new DoctorCheck("ONNX Runtime GPU build", true, $"ONNX Runtime {environment.Version} at {environment.LibraryPath}, providers {string.Join(", ", environment.AvailableProviders)}, CUDA provider {providerLibrary}")
            : new DoctorCheck("ONNX Runtime GPU build", false,
                $"ONNX Runtime {environment.Version} at {environment.LibraryPath} is the CPU build (providers {string.Join(", ", environment.AvailableProviders)}; " +
                $"no {Path.GetFileName(providerLibrary)} beside it). Deploy the GPU build: dotnet publish src/Workers.Cli -c Release -r linux-x64 -p:WorkersGpu=true, or the ops/gpu container."));

        foreach (var (name, library, package) in Libraries)
            checks.Add(CheckLibrary(name, library, package));

        checks.Add(CheckNvidiaSmi(out var gpus));
        var visible = System.Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES");
        checks.Add(gpus > 0
            ? new DoctorCheck("visible GPUs", true, $"{gpus} GPU(s) per nvidia-smi; CUDA_VISIBLE_DEVICES={(visible ?? "(unset: all)")}")
            : new DoctorCheck("visible GPUs", false, $"no GPU visible (CUDA_VISIBLE_DEVICES={(visible ?? "(unset)")}). In a container, run it with --gpus all (NVIDIA Container Toolkit) or the nvidia.com/gpu resource."));

        var session = CheckSession(environment, modelPath, options);
        checks.Add(session);
        if (!session.Ok) checks.Add(CheckFallback(environment, modelPath, options));
        return new DoctorReport(checks);
    }

    internal static DoctorCheck CheckLibrary(string name, string library, string package)
    {
        if (!NativeLibrary.TryLoad(library, out var handle))
            return new DoctorCheck(name, false, $"{library} not found by the dynamic loader (install {package}; its folder must be on the loader path: ldconfig or LD_LIBRARY_PATH)");
        try
        {
            return new DoctorCheck(name, true, $"{library} loads" + (FindMapped(library) is { } path ? $" ({path})" : ""));
        }
        finally
        {
            NativeLibrary.Free(handle);
        }
    }

    private static DoctorCheck CheckNvidiaSmi(out int gpus)
    {
        gpus = 0;
        try
        {
            var start = new ProcessStartInfo("nvidia-smi", "--query-gpu=index,name,driver_version,memory.total --format=csv,noheader")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEnd();
            var error = process.StandardError.ReadToEnd();
            if (!process.WaitForExit(30_000))
            {
                process.Kill();
                return new DoctorCheck("nvidia-smi", false, "nvidia-smi did not answer within 30 s: the driver is hung or the GPU is lost; check dmesg for Xid errors.");
            }
            if (process.ExitCode != 0)
                return new DoctorCheck("nvidia-smi", false, $"nvidia-smi exited with {process.ExitCode}: {(error + output).Trim()}");
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            gpus = lines.Length;
            return new DoctorCheck("nvidia-smi", true, lines.Length == 0 ? "no GPU listed" : string.Join("; ", lines));
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return new DoctorCheck("nvidia-smi", false, "nvidia-smi is not on PATH (it comes with the NVIDIA driver, cuda-drivers-580; in a container, from the host through the NVIDIA Container Toolkit).");
        }
    }

    private static DoctorCheck CheckSession(OrtEnvironment environment, string modelPath, OnnxSessionOptions? options)
    {
        var cuda = (options ?? new OnnxSessionOptions()).Clone();
        cuda.ExecutionProvider = OnnxExecutionProvider.Cuda;
        try
        {
            using var session = OnnxSession.Create(environment, modelPath, cuda);
            return new DoctorCheck("CUDA session", true,
                $"{Path.GetFileName(modelPath)} on {session.ExecutionProvider} (device {cuda.DeviceId}); nodes placed {session.Placement.Summary}");
        }
        catch (ExecutionProviderUnavailableException e)
        {
            return new DoctorCheck("CUDA session", false, "ONNX Runtime could not run the model on CUDA: " + e.Reason);
        }
    }

    // What a worker with the default ExecutionProvider=auto would do here: informational only.
    private static DoctorCheck CheckFallback(OrtEnvironment environment, string modelPath, OnnxSessionOptions? options)
    {
        var auto = (options ?? new OnnxSessionOptions()).Clone();
        auto.ExecutionProvider = OnnxExecutionProvider.Auto;
        using var session = OnnxSession.Create(environment, modelPath, auto);
        return new DoctorCheck("ExecutionProvider=auto", false,
            $"a worker here runs on {session.ExecutionProvider}" + (session.FallbackReason is { } reason ? $"; ORT's reason: {reason}" : ""), Required: false);
    }

    // Where the loader found a library, from the process map (for the report only).
    private static string? FindMapped(string library)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                var at = line.IndexOf('/', StringComparison.Ordinal);
                if (at >= 0 && Path.GetFileName(line.AsSpan(at)).StartsWith(library, StringComparison.Ordinal)) return line[at..];
            }
        }
        catch (IOException)
        {
        }
        return null;
    }
}
