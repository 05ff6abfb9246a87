using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Workers.Onnx.Native;

/// <summary>The one place an OrtStatus* is looked at. A null status is success and costs a compare;
/// anything else is read, released (always, in finally) and turned into an exception.</summary>
internal static unsafe class NativeApiStatus
{
    /// <summary>Throws <see cref="OnnxRuntimeException"/> when <paramref name="status"/> is an error.
    /// <paramref name="context"/> should be a literal so the success path allocates nothing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(OrtStatus* status, string? context = null)
    {
        if (status != null) Throw(status, context);
    }

    /// <summary>Consumes <paramref name="status"/>: null when it is success, else the exception it means.</summary>
    public static OnnxRuntimeException? ToException(OrtStatus* status, string? context = null)
    {
        if (status == null) return null;
        var api = OrtLibrary.Api;
        OrtErrorCode code;
        string message;
        try
        {
            code = api->GetErrorCode(status);
            message = (Marshal.PtrToStringUTF8((nint)api->GetErrorMessage(status)) ?? "").TrimEnd();
        }
        finally
        {
            api->ReleaseStatus(status);
        }
        return new OnnxRuntimeException(code, message, context);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(OrtStatus* status, string? context) => throw ToException(status, context)!;
}
