using System.Runtime.InteropServices;

namespace Workers.Onnx.Native;

/// <summary>The loaded ONNX Runtime shared library and its C API table. One per process: the
/// library's SONAME is libonnxruntime.so.1 whatever its path, so a second build cannot be loaded
/// beside the first (the dynamic loader would hand back the first).</summary>
internal static unsafe class OrtLibrary
{
    /// <summary>The C API version this binding's table layout is written for (ORT_API_VERSION).</summary>
    public const uint ApiVersion = 30;

    private static readonly Lock Gate = new();
    private static OrtApi* api;
    private static string? loadedPath;
    private static string? version;
    private static OrtMemoryInfoHandle? cpuMemoryInfo;

    public static bool IsLoaded => api != null;

    /// <summary>The function table; throws when no library is loaded yet.</summary>
    public static OrtApi* Api => api != null ? api : throw NotLoaded();

    public static string LoadedPath => loadedPath ?? throw NotLoaded();

    public static string Version => version ?? throw NotLoaded();

    /// <summary>Plain CPU memory, for tensors over buffers we own.</summary>
    public static OrtMemoryInfo* CpuMemoryInfo => (OrtMemoryInfo*)(cpuMemoryInfo ?? throw NotLoaded()).DangerousGetHandle();

    /// <summary>Loads the library at <paramref name="path"/> (a no-op when it is already loaded from
    /// there) and takes its API table for <see cref="ApiVersion"/>.</summary>
    public static void Load(string path)
    {
        var full = Path.GetFullPath(path);
        lock (Gate)
        {
            if (loadedPath is not null)
            {
                if (string.Equals(loadedPath, full, StringComparison.Ordinal)) return;
                throw new InvalidOperationException(
                    $"ONNX Runtime is already loaded from {loadedPath}; this process cannot also load {full}. " +
                    "One process uses one ONNX Runtime build: restart with the other LibraryPath.");
            }
            if (!File.Exists(full))
                throw new FileNotFoundException(
                    $"ONNX Runtime library not found at {full}. Run `workers models fetch` to fetch it, or set LibraryPath to another build.", full);

            nint handle;
            try
            {
                handle = NativeLibrary.Load(full);
            }
            catch (DllNotFoundException e)
            {
                throw new DllNotFoundException($"Could not load ONNX Runtime from {full}: {e.Message}", e);
            }
            var getApiBase = (delegate* unmanaged<OrtApiBase*>)NativeLibrary.GetExport(handle, "OrtGetApiBase");
            var apiBase = getApiBase();
            var v = Marshal.PtrToStringUTF8((nint)apiBase->GetVersionString()) ?? "unknown";
            var table = apiBase->GetApi(ApiVersion);
            if (table == null)
                throw new NotSupportedException(
                    $"ONNX Runtime {v} at {full} does not provide C API version {ApiVersion}; this binding needs ONNX Runtime 1.30.0 or newer.");

            api = table;
            version = v;
            loadedPath = full;

            OrtMemoryInfo* info;
            NativeApiStatus.Check(api->CreateCpuMemoryInfo(OrtAllocatorType.Device, OrtMemType.Default, &info), "Creating CPU memory info");
            cpuMemoryInfo = OrtMemoryInfoHandle.Own(info);
        }
    }

    private static InvalidOperationException NotLoaded() =>
        new("ONNX Runtime is not loaded yet: create an OrtEnvironment (OrtEnvironment.Load) first.");
}
