using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Workers.Onnx.Native;

namespace Workers.Onnx;

/// <summary>The process's ONNX Runtime: the loaded library and its one OrtEnv, created with a custom
/// logger so every line ORT writes lands in <see cref="Log"/> (a ring buffer) and goes to whoever
/// subscribed. ORT allows one environment per process, so this is a process-wide singleton:
/// <see cref="Load"/> with the same library path returns the same instance.</summary>
public sealed unsafe class OrtEnvironment
{
    private static readonly Lock Gate = new();
    private static volatile OrtEnvironment? current;

    private readonly OrtEnvHandle handle;
    private volatile Action<OrtLogEntry>[] listeners = [];

    private OrtEnvironment(OrtEnvHandle handle, OrtLogSeverity severity)
    {
        this.handle = handle;
        LogSeverity = severity;
        LibraryPath = OrtLibrary.LoadedPath;
        Version = OrtLibrary.Version;
        BuildInfo = Utf8.Read(OrtLibrary.Api->GetBuildInfoString());
        AvailableProviders = ReadAvailableProviders();
    }

    /// <summary>The environment, when one was loaded.</summary>
    public static OrtEnvironment? Current => current;

    /// <summary>Every line ORT logged at <see cref="LogSeverity"/> or above, most recent 512 kept.</summary>
    public static OrtLogBuffer Log { get; } = new();

    /// <summary>Full path of the loaded library.</summary>
    public string LibraryPath { get; }

    /// <summary>ORT's version string, e.g. <c>1.30.0</c>.</summary>
    public string Version { get; }

    /// <summary>ORT's build description (GetBuildInfoString).</summary>
    public string BuildInfo { get; }

    /// <summary>Providers compiled into this build (GetAvailableProviders). A provider listed here may
    /// still fail to load when its own shared library or CUDA is missing.</summary>
    public IReadOnlyList<string> AvailableProviders { get; }

    /// <summary>The least severe line ORT hands to the custom logger.</summary>
    public OrtLogSeverity LogSeverity { get; private set; }

    internal OrtEnv* Ptr => handle.Ptr;

    /// <summary>Loads ONNX Runtime from <paramref name="libraryPath"/> and creates the process's
    /// environment, or returns the existing one when it was loaded from the same path.</summary>
    /// <param name="libraryPath">Path to <c>libonnxruntime.so.1</c>.</param>
    /// <param name="logSeverity">Least severe ORT line to capture. The default is Warning.</param>
    public static OrtEnvironment Load(string libraryPath, OrtLogSeverity logSeverity = OrtLogSeverity.Warning)
    {
        lock (Gate)
        {
            if (current is not null)
            {
                var full = Path.GetFullPath(libraryPath);
                if (!string.Equals(current.LibraryPath, full, StringComparison.Ordinal))
                    throw new InvalidOperationException(
                        $"ONNX Runtime is already loaded from {current.LibraryPath}; this process cannot also load {full}. " +
                        "One process uses one ONNX Runtime build: restart with the other LibraryPath.");
                return current;
            }

            OrtLibrary.Load(libraryPath);
            var api = OrtLibrary.Api;
            OrtEnv* env;
            var logId = Utf8.Z("workers");
            fixed (byte* id = logId)
            {
                NativeApiStatus.Check(
                    api->CreateEnvWithCustomLogger(&OnLog, null, (OrtLoggingLevel)logSeverity, id, &env),
                    "Creating the ONNX Runtime environment");
            }
            var h = OrtEnvHandle.Own(env);
            NativeApiStatus.Check(api->DisableTelemetryEvents(env), "Disabling ORT telemetry");
            current = new OrtEnvironment(h, logSeverity);
            return current;
        }
    }

    /// <summary>Loads ONNX Runtime from <paramref name="libraryPath"/> when given (another build, e.g. a
    /// GPU one: <see cref="OnnxSessionOptions.LibraryPath"/>), else from the library models.json pins
    /// under <paramref name="modelsRoot"/>, checked against its sha256 first.</summary>
    public static OrtEnvironment Load(ModelCatalog catalog, string modelsRoot, string? libraryPath = null, OrtLogSeverity logSeverity = OrtLogSeverity.Warning)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return Load(libraryPath ?? catalog.Resolve(ModelCatalog.OnnxRuntime, modelsRoot), logSeverity);
    }

    /// <summary>Changes the least severe line ORT hands to the logger (UpdateEnvWithCustomLogLevel).</summary>
    public void SetLogSeverity(OrtLogSeverity severity)
    {
        NativeApiStatus.Check(OrtLibrary.Api->UpdateEnvWithCustomLogLevel(handle.Ptr, (OrtLoggingLevel)severity), "Changing ORT's log level");
        LogSeverity = severity;
    }

    /// <summary>Calls <paramref name="listener"/> for every line ORT logs from now on, on ORT's thread,
    /// until the returned object is disposed. A listener that throws is ignored for that line.</summary>
    public IDisposable Subscribe(Action<OrtLogEntry> listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (Gate) listeners = [.. listeners, listener];
        return new Subscription(this, listener);
    }

    /// <summary>Writes every line ORT logs from now on to <paramref name="logger"/>.</summary>
    public IDisposable ForwardTo(ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        return Subscribe(e =>
        {
            var level = OrtLogForwarding.ToLogLevel(e.Severity);
            if (logger.IsEnabled(level)) OrtLogForwarding.OrtLine(logger, level, e.LogId, e.CodeLocation, e.Message);
        });
    }

    private void Unsubscribe(Action<OrtLogEntry> listener)
    {
        lock (Gate) listeners = [.. listeners.Where(l => l != listener)];
    }

    // Called by ORT, on any of its threads, for each line at or above the environment's level.
    // Must never let an exception unwind into native code.
    [UnmanagedCallersOnly]
    private static void OnLog(void* param, OrtLoggingLevel severity, byte* category, byte* logId, byte* codeLocation, byte* message)
    {
        try
        {
            var entry = Log.Add((OrtLogSeverity)severity, Utf8.Read(category), Utf8.Read(logId), Utf8.Read(codeLocation), Utf8.Read(message));
            var env = current;
            if (env is null) return;
            foreach (var listener in env.listeners)
            {
                try
                {
                    listener(entry);
                }
                catch (Exception)
                {
                    // A broken listener must not take ORT down with it, nor stop the others.
                }
            }
        }
        catch (Exception)
        {
            // Out of memory while copying a log line: drop the line rather than crash inside ORT.
        }
    }

    private static IReadOnlyList<string> ReadAvailableProviders()
    {
        var api = OrtLibrary.Api;
        byte** names;
        int count;
        NativeApiStatus.Check(api->GetAvailableProviders(&names, &count), "Listing execution providers");
        try
        {
            var result = new string[count];
            for (var i = 0; i < count; i++) result[i] = Utf8.Read(names[i]);
            return result;
        }
        finally
        {
            NativeApiStatus.Check(api->ReleaseAvailableProviders(names, count), "Releasing the provider list");
        }
    }

    private sealed class Subscription(OrtEnvironment env, Action<OrtLogEntry> listener) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0) env.Unsubscribe(listener);
        }
    }
}
