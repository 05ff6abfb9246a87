namespace Workers.Onnx;

/// <summary>
/// The one rule for "ORT ran out of memory, so a smaller batch may succeed", read where ORT's status
/// is translated (<see cref="OnnxRuntimeException.FromStatus"/>) and nowhere else: callers catch
/// <see cref="OnnxOutOfMemoryException"/> (and the managed <see cref="OutOfMemoryException"/>) by type.
/// </summary>
internal static class OutOfMemory
{
    /// <summary>
    /// Conservative: true only for error code <see cref="OrtErrorCode.Fail"/> or
    /// <see cref="OrtErrorCode.RuntimeException"/> whose ORT message names an allocation failure
    /// ("out of memory", "CUDA failure 2:", "cudaErrorMemoryAllocation", "Failed to allocate memory",
    /// "bad_alloc", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED"; case-insensitive).
    /// Other codes (invalid argument, provider unavailable, ...) are never out of memory, whatever
    /// their text.
    /// </summary>
    public static bool NamesAllocationFailure(OrtErrorCode code, string ortMessage) =>
        code is OrtErrorCode.Fail or OrtErrorCode.RuntimeException
        && Array.Exists(Markers, m => ortMessage.Contains(m, StringComparison.OrdinalIgnoreCase));

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
