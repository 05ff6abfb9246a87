using Microsoft.Extensions.Logging;
using Ort = Microsoft.ML.OnnxRuntime;

namespace Workers.Onnx;

/// <summary>The process's ONNX Runtime environment (the managed <c>OrtEnv</c>), created with a logging
/// callback so every line ORT writes lands in <see cref="Log"/> (a ring buffer) and goes to whoever
/// subscribed. ORT allows one environment per process and the managed API keeps it as a singleton,
/// so this is one too: create it with <see cref="Load"/> before any other ORT call, or ORT's
/// own default environment (which logs to stderr, not to us) would be the one in use.</summary>
/// <remarks>The native library comes from the NuGet package the build referenced
/// (<c>runtimes/linux-x64/native</c> beside the executable): CPU by default, CUDA with
/// <c>-p:WorkersGpu=true</c>.</remarks>
public sealed class OrtEnvironment
{
    private static readonly Lock Gate = new();
    private static volatile OrtEnvironment? current;

    // Kept in a static so the delegate ORT calls back into is never collected.
    private static readonly Ort.DOrtLoggingFunction LogCallback = OnLog;

    private readonly Ort.OrtEnv env;
    private volatile Action<OrtLogEntry>[] listeners = [];

    private OrtEnvironment(Ort.OrtEnv env, OrtLogSeverity severity)
    {
        this.env = env;
        LogSeverity = severity;
        Version = env.GetVersionString();
        AvailableProviders = env.GetAvailableProviders();
        LibraryPath = FindLoadedLibrary() ?? "libonnxruntime.so";
    }

    /// <summary>The environment, when one was created.</summary>
    public static OrtEnvironment? Current => current;

    /// <summary>Every line ORT logged at <see cref="LogSeverity"/> or above, most recent 512 kept.</summary>
    public static OrtLogBuffer Log { get; } = new();

    /// <summary>Full path of the native library the process mapped (from /proc/self/maps).</summary>
    public string LibraryPath { get; }

    /// <summary>ORT's version string, e.g. <c>1.32.0</c>.</summary>
    public string Version { get; }

    /// <summary>Providers compiled into this build (GetAvailableProviders). The CPU package lists only
    /// CPUExecutionProvider; the GPU one lists CUDA too, which may still fail to load when the CUDA 13
    /// runtime libraries or cuDNN 9 are missing.</summary>
    public IReadOnlyList<string> AvailableProviders { get; }

    /// <summary>True when this build carries the CUDA provider (the <c>-p:WorkersGpu=true</c> build).</summary>
    public bool HasCudaProvider => AvailableProviders.Contains(OnnxSession.CudaProvider);

    /// <summary>The least severe line ORT hands to the callback from the environment's own logger.</summary>
    public OrtLogSeverity LogSeverity { get; private set; }

    /// <summary>Creates the process's environment, or returns the existing one.</summary>
    /// <param name="logSeverity">Least severe ORT line to capture. The default is Warning.</param>
    public static OrtEnvironment Load(OrtLogSeverity logSeverity = OrtLogSeverity.Warning)
    {
        lock (Gate)
        {
            if (current is not null) return current;
            if (Ort.OrtEnv.IsCreated)
                throw new InvalidOperationException(
                    "ONNX Runtime's environment was already created without Workers' logging callback (an InferenceSession or OrtValue " +
                    "was made before OrtEnvironment.Load). Call OrtEnvironment.Load once at start-up, before any other ONNX Runtime call.");
            var options = new Ort.EnvironmentCreationOptions
            {
                logId = "workers",
                logLevel = (Ort.OrtLoggingLevel)logSeverity,
                loggingFunction = LogCallback,
            };
            Ort.OrtEnv env;
            try
            {
                env = Ort.OrtEnv.CreateInstanceWithOptions(ref options);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException)
            {
                throw new InvalidOperationException(
                    $"ONNX Runtime's native library could not be loaded: {e.Message}. It ships with the build (runtimes/linux-x64/native/libonnxruntime.so " +
                    "from the Microsoft.ML.OnnxRuntime or .Gpu.Linux package): run the published output as a whole, or rebuild.", e);
            }
            env.DisableTelemetryEvents();
            current = new OrtEnvironment(env, logSeverity);
            return current;
        }
    }

    /// <summary>Changes the least severe line the environment's logger passes on.</summary>
    public void SetLogSeverity(OrtLogSeverity severity)
    {
        env.EnvLogLevel = (Ort.OrtLoggingLevel)severity;
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

    /// <summary>Writes every line ORT logs from now on to <paramref name="logger"/>. Lines below
    /// Warning (a session's verbose set-up log, read for node placement) are left out.</summary>
    public IDisposable ForwardTo(ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        return Subscribe(e =>
        {
            if (e.Severity < LogSeverity) return;
            var level = OrtLogForwarding.ToLogLevel(e.Severity);
            if (logger.IsEnabled(level)) OrtLogForwarding.OrtLine(logger, level, e.LogId, e.CodeLocation, e.Message);
        });
    }

    private void Unsubscribe(Action<OrtLogEntry> listener)
    {
        lock (Gate) listeners = [.. listeners.Where(l => l != listener)];
    }

    // Called by ORT, on any of its threads. Must never let an exception unwind into native code.
    private static void OnLog(IntPtr param, Ort.OrtLoggingLevel severity, string category, string logId, string codeLocation, string message)
    {
        try
        {
            var env = current;
            // Lines below the environment's level come from a session's own (verbose) logger while it is
            // created: listeners get them (the placement report), the ring buffer does not, or 800 lines
            // per session would push out the warnings a failure is explained with.
            var entry = env is null || (OrtLogSeverity)severity >= env.LogSeverity
                ? Log.Add((OrtLogSeverity)severity, category ?? "", logId ?? "", codeLocation ?? "", message ?? "")
                : new OrtLogEntry(-1, (OrtLogSeverity)severity, category ?? "", logId ?? "", codeLocation ?? "", message ?? "");
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

    // The managed API loads "onnxruntime" by name; which file that became is only in the process map.
    private static string? FindLoadedLibrary()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                var at = line.IndexOf('/', StringComparison.Ordinal);
                if (at >= 0 && Path.GetFileName(line.AsSpan(at)) is "libonnxruntime.so" or "libonnxruntime.so.1") return line[at..];
            }
        }
        catch (IOException)
        {
        }
        return null;
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
