using Microsoft.Extensions.Logging;

namespace Workers.Onnx;

/// <summary>ORT log lines as <see cref="ILogger"/> events. ORT's Info level is chatty (one line per
/// session set-up step), so it maps to Debug; Verbose maps to Trace.</summary>
internal static partial class OrtLogForwarding
{
    public static LogLevel ToLogLevel(OrtLogSeverity severity) => severity switch
    {
        OrtLogSeverity.Verbose => LogLevel.Trace,
        OrtLogSeverity.Info => LogLevel.Debug,
        OrtLogSeverity.Warning => LogLevel.Warning,
        OrtLogSeverity.Error => LogLevel.Error,
        _ => LogLevel.Critical,
    };

    [LoggerMessage(EventId = 1, EventName = "OnnxRuntimeLog", Message = "onnxruntime [{LogId}] {CodeLocation}: {OrtMessage}")]
    public static partial void OrtLine(ILogger logger, LogLevel level, string logId, string codeLocation, string ortMessage);

    [LoggerMessage(EventId = 2, EventName = "ExecutionProviderFallback", Level = LogLevel.Warning,
        Message = "CUDA execution provider unavailable for {ModelPath}; falling back to CPU (ExecutionProvider=auto). ORT says: {Reason}")]
    public static partial void FallingBackToCpu(ILogger logger, string modelPath, string reason);

    [LoggerMessage(EventId = 3, EventName = "SessionCreated", Level = LogLevel.Information,
        Message = "ONNX session for {ModelPath} on {ExecutionProvider} (requested {Requested}; ONNX Runtime {Version}; intra-op threads {IntraOpThreads}; nodes placed {Placement})")]
    public static partial void SessionCreated(ILogger logger, string modelPath, string executionProvider, string requested, string version, int intraOpThreads, string placement);
}
