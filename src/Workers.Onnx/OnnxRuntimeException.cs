namespace Workers.Onnx;

/// <summary>ONNX Runtime reported an error. <see cref="OrtMessage"/> is ORT's own text, unchanged;
/// <see cref="Exception.Message"/> puts what we were doing in front of it.</summary>
public class OnnxRuntimeException : Exception
{
    public OnnxRuntimeException(OrtErrorCode errorCode, string ortMessage, string? context = null)
        : this(errorCode, ortMessage, Format(errorCode, ortMessage, context), inner: null)
    {
    }

    /// <summary>As the public constructor, wrapping the managed API's exception it came from.</summary>
    internal static OnnxRuntimeException Wrap(OrtErrorCode errorCode, string ortMessage, string context, Exception inner) =>
        new(errorCode, ortMessage, Format(errorCode, ortMessage, context), inner);

    protected OnnxRuntimeException(OrtErrorCode errorCode, string ortMessage, string message, Exception? inner)
        : base(message, inner)
    {
        ErrorCode = errorCode;
        OrtMessage = ortMessage;
    }

    /// <summary>ORT's error code (OrtErrorCode).</summary>
    public OrtErrorCode ErrorCode { get; }

    /// <summary>ORT's message, unchanged.</summary>
    public string OrtMessage { get; }

    private static string Format(OrtErrorCode code, string ortMessage, string? context) =>
        context is null ? $"ONNX Runtime error {code}: {ortMessage}" : $"{context}: ONNX Runtime error {code}: {ortMessage}";
}

/// <summary>The requested execution provider could not be enabled. <see cref="Reason"/> carries ORT's
/// own explanation: its status text and the log lines it wrote meanwhile (the status alone often says
/// no more than "Failed to load shared library").</summary>
public sealed class ExecutionProviderUnavailableException : OnnxRuntimeException
{
    public ExecutionProviderUnavailableException(string provider, string reason, string message, OrtErrorCode errorCode, Exception? inner = null)
        : base(errorCode, reason, message, inner)
    {
        Provider = provider;
        Reason = reason;
    }

    /// <summary>The provider that was asked for, e.g. <c>CUDAExecutionProvider</c>.</summary>
    public string Provider { get; }

    /// <summary>ORT's reason: its status message followed by the log lines it wrote meanwhile.</summary>
    public string Reason { get; }
}
