namespace Workers.Onnx;

/// <summary>One line ONNX Runtime logged through our custom logger.</summary>
/// <param name="Sequence">Increases by one per line kept in <see cref="OrtEnvironment.Log"/>, process-wide;
/// marks "what was logged since". -1 for a line below the environment's level (a session's verbose
/// set-up log), which listeners see but the buffer does not keep.</param>
/// <param name="Severity">ORT's severity.</param>
/// <param name="Category">ORT's category, e.g. <c>onnxruntime</c>.</param>
/// <param name="LogId">The environment's or session's log id.</param>
/// <param name="CodeLocation">ORT's source file and line.</param>
/// <param name="Message">The text.</param>
public sealed record OrtLogEntry(long Sequence, OrtLogSeverity Severity, string Category, string LogId, string CodeLocation, string Message)
{
    public override string ToString() => $"[{SeverityLetter(Severity)}:{Category}:{LogId}, {CodeLocation}] {Message}";

    private static char SeverityLetter(OrtLogSeverity s) => s switch
    {
        OrtLogSeverity.Verbose => 'V',
        OrtLogSeverity.Info => 'I',
        OrtLogSeverity.Warning => 'W',
        OrtLogSeverity.Error => 'E',
        _ => 'F',
    };
}
