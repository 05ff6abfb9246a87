namespace Workers.Onnx;

/// <summary>ONNX Runtime reported an error. <see cref="OrtMessage"/> is ORT's own text, unchanged;
/// <see cref="Exception.Message"/> puts what we were doing in front of it.</summary>
public class OnnxRuntimeException : Exception
{
    public OnnxRuntimeException(OrtErrorCode errorCode, string ortMessage, string? context = null)
        : this(errorCode, ortMessage, Format(errorCode, ortMessage, context), inner: null)
    {
    }

    /// <summary>
    /// The one translation of an ORT status into our exceptions: an allocation failure
    /// (<see cref="OutOfMemory.NamesAllocationFailure"/>) becomes <see cref="OnnxOutOfMemoryException"/>,
    /// anything else an <see cref="OnnxRuntimeException"/>. Callers above catch the type; none reads ORT's text.
    /// </summary>
    /// <param name="inner">The managed API's exception it came from, if any.</param>
    public static OnnxRuntimeException FromStatus(OrtErrorCode errorCode, string ortMessage, string? context = null, Exception? inner = null)
    {
        var message = Format(errorCode, ortMessage, context);
        return OutOfMemory.NamesAllocationFailure(errorCode, ortMessage)
            ? new OnnxOutOfMemoryException(errorCode, ortMessage, message, inner)
            : new OnnxRuntimeException(errorCode, ortMessage, message, inner);
    }

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

/// <summary>Inference ran out of memory (host or device): a smaller batch may succeed. Raised only by
/// <see cref="OnnxRuntimeException.FromStatus"/>, where ORT's status is read; the VAD's shard processor
/// and the model stages catch this type and halve their batch.</summary>
public sealed class OnnxOutOfMemoryException : OnnxRuntimeException
{
    internal OnnxOutOfMemoryException(OrtErrorCode errorCode, string ortMessage, string message, Exception? inner)
        : base(errorCode, ortMessage, message, inner)
    {
    }
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
