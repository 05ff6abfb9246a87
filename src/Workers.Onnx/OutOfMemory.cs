namespace Workers.Onnx;

/// <summary>
/// The one rule for "inference ran out of memory, so a smaller batch may succeed", shared by every
/// model adapter's caller (the VAD's shard processor and the model stages halve their batch on it).
/// </summary>
public static class OutOfMemory
{
    /// <summary>
    /// Conservative: true only for <see cref="OutOfMemoryException"/> (including
    /// <see cref="InsufficientMemoryException"/>), or for an <see cref="OnnxRuntimeException"/> with
    /// error code <see cref="OrtErrorCode.Fail"/> or <see cref="OrtErrorCode.RuntimeException"/>
    /// whose ORT message names an allocation failure ("out of memory", "CUDA failure 2:",
    /// "cudaErrorMemoryAllocation", "Failed to allocate memory", "bad_alloc",
    /// "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED"; case-insensitive). Inner
    /// exceptions are looked at too. Other codes (invalid argument, provider unavailable, ...) are
    /// never out of memory, whatever their text. The managed API's own exception (a model stage
    /// running its session directly) is read the same way, through its status code and text.
    /// </summary>
    public static bool Is(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is OutOfMemoryException) return true;
            if (x is OnnxRuntimeException { ErrorCode: OrtErrorCode.Fail or OrtErrorCode.RuntimeException } ort
                && x is not ExecutionProviderUnavailableException
                && NamesAllocationFailure(ort.OrtMessage))
                return true;
            if (x is Microsoft.ML.OnnxRuntime.OnnxRuntimeException raw
                && OrtErrors.Split(raw.Message) is { Code: OrtErrorCode.Fail or OrtErrorCode.RuntimeException } status
                && NamesAllocationFailure(status.Message))
                return true;
        }
        return false;
    }

    private static bool NamesAllocationFailure(string ortMessage) =>
        Array.Exists(Markers, m => ortMessage.Contains(m, StringComparison.OrdinalIgnoreCase));

    private static readonly string[] Markers =
    [
        "out of memory",
        "CUDA failure 2:",
        "cudaErrorMemoryAllocation",
        "Failed to allocate memory",
        "bad_alloc",
        "CUBLAS_STATUS_ALLOC_FAILED",
        "CUDNN_STATUS_ALLOC_FAILED",
    ];
}
