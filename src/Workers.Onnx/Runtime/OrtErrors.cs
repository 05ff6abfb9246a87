using System.Text.RegularExpressions;
using Ort = Microsoft.ML.OnnxRuntime;

namespace Workers.Onnx;

/// <summary>Turns the managed API's exceptions into ours. The managed API reports ORT's status as
/// "[ErrorCode:NAME] message"; <see cref="OnnxRuntimeException"/> keeps the code (the OOM path and
/// the fallback decision read it) and ORT's text apart.</summary>
/// <remarks>Every adapter that calls the managed API translates here: the ones in this project and the
/// model stages (which run their own <c>InferenceSession</c>), so out of memory is recognised in one place.</remarks>
public static partial class OrtErrors
{
    /// <summary>The managed API's exception as ours (<see cref="OnnxRuntimeException.FromStatus"/>), with
    /// <paramref name="context"/> (what we were doing) in front of ORT's text.</summary>
    public static OnnxRuntimeException Translate(Ort.OnnxRuntimeException e, string context)
    {
        var (code, message) = Split(e.Message);
        return OnnxRuntimeException.FromStatus(code, message, context, e);
    }

    internal static (OrtErrorCode Code, string Message) Split(string text)
    {
        var m = StatusPattern().Match(text);
        if (!m.Success) return (OrtErrorCode.Fail, text);
        var name = m.Groups["code"].Value;
        var code = name == "ExecutionProviderFail" ? OrtErrorCode.EpFail
            : Enum.TryParse<OrtErrorCode>(name, out var parsed) ? parsed
            : OrtErrorCode.Fail;
        return (code, m.Groups["message"].Value);
    }

    [GeneratedRegex(@"^\[ErrorCode:(?<code>\w+)\] (?<message>.*)$", RegexOptions.Singleline)]
    private static partial Regex StatusPattern();
}
