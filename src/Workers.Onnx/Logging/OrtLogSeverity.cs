namespace Workers.Onnx;

/// <summary>Severity of an ONNX Runtime log line (OrtLoggingLevel).</summary>
public enum OrtLogSeverity
{
    Verbose = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
    Fatal = 4,
}
