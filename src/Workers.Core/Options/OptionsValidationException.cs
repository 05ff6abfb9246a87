namespace Workers.Core.Options;

/// <summary>Configuration is wrong; the message lists every problem found, one a line.</summary>
public sealed class OptionsValidationException(IReadOnlyList<string> problems)
    : Exception("Invalid configuration:" + Environment.NewLine + string.Join(Environment.NewLine, problems.Select(p => "  - " + p)))
{
    public IReadOnlyList<string> Problems { get; } = problems;

    public static void ThrowIfAny(IEnumerable<string> problems)
    {
        var list = problems.ToList();
        if (list.Count > 0) throw new OptionsValidationException(list);
    }
}
