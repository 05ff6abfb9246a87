namespace Workers.Onnx;

/// <summary>The models root does not hold what models.json pins, or fetching failed. The message
/// says what is wrong with which file and what to do (usually: run <c>workers models fetch</c>).</summary>
public sealed class ModelStoreException(string message, IReadOnlyList<string>? problems = null, Exception? inner = null)
    : Exception(message, inner)
{
    /// <summary>One line per problem.</summary>
    public IReadOnlyList<string> Problems { get; } = problems ?? [message];
}
