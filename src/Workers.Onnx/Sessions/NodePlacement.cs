using System.Text.RegularExpressions;

namespace Workers.Onnx;

/// <summary>Which execution provider got which graph node, read from the placement report ORT writes at
/// Verbose severity while a session is created (session_state.cc, VerifyEachNodeIsAssignedToAnEp):
/// " All nodes placed on [EP]. Number of nodes: N" when one provider got everything, otherwise
/// " Node(s) placed on [EP]. Number of nodes: N" per provider followed by its nodes as "  OpType (name)".
/// Why this source and not another is written in ARCHITECTURE.md (Inference).</summary>
public sealed partial class NodePlacement
{
    /// <summary>Operators that carry a model's compute. <c>cuda</c> refuses a session that left any of
    /// them on CPU; anything else ORT may keep on CPU by its own choice (Shape, Gather, Concat, ...
    /// feeding shape inputs: GetCpuPreferredNodes), which is normal and cheap.</summary>
    public static readonly IReadOnlySet<string> ComputeOperators = new HashSet<string>(StringComparer.Ordinal)
    {
        "Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "FusedConv", "NhwcConv",
        "MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul", "MatMulNBits", "Gemm", "FusedGemm", "Einsum",
        "LSTM", "GRU", "RNN", "Attention", "MultiHeadAttention", "GroupQueryAttention", "STFT", "DFT",
    };

    private readonly Dictionary<string, int> counts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<(string OpType, string Name)>> nodes = new(StringComparer.Ordinal);
    private string? currentProvider;

    /// <summary>Nodes per provider.</summary>
    public IReadOnlyDictionary<string, int> NodesPerProvider => counts;

    /// <summary>True once ORT's report was seen, or when the session had one provider only (<see cref="AllOn"/>).</summary>
    public bool IsKnown => counts.Count > 0 || AllOn is not null;

    /// <summary>The one provider a session was given, so every node is on it: set without asking ORT
    /// (<see cref="Only"/>), and then <see cref="NodesPerProvider"/> is empty. Null: ORT's report.</summary>
    public string? AllOn { get; private init; }

    /// <summary>A session given only <paramref name="provider"/>: no report is needed to know where its nodes are.</summary>
    public static NodePlacement Only(string provider) => new() { AllOn = provider };

    /// <summary>"CPUExecutionProvider: 212, ..." as reported, or "all on CPUExecutionProvider".</summary>
    public string Summary => AllOn is { } only ? $"all on {only}" : string.Join(", ", counts.Select(kv => $"{kv.Key}: {kv.Value}"));

    /// <summary>The nodes ORT listed for <paramref name="provider"/> (empty when it listed none, as it
    /// does when one provider got every node).</summary>
    public IReadOnlyList<(string OpType, string Name)> NodesOn(string provider) =>
        nodes.TryGetValue(provider, out var list) ? list : [];

    /// <summary>Compute nodes (<see cref="ComputeOperators"/>) that ORT listed on
    /// <paramref name="provider"/>, as "OpType (name)".</summary>
    public IReadOnlyList<string> ComputeNodesOn(string provider) =>
        [.. NodesOn(provider).Where(n => ComputeOperators.Contains(n.OpType)).Select(n => $"{n.OpType} ({n.Name})")];

    /// <summary>Reads one log message; lines that are not part of the placement report are ignored.</summary>
    public void Add(string message)
    {
        foreach (var raw in message.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            var header = HeaderPattern().Match(line);
            if (header.Success)
            {
                currentProvider = header.Groups["ep"].Value;
                counts[currentProvider] = counts.GetValueOrDefault(currentProvider) + int.Parse(header.Groups["n"].Value, System.Globalization.CultureInfo.InvariantCulture);
                continue;
            }
            if (currentProvider is null) continue;
            foreach (Match node in NodePattern().Matches(line))
            {
                if (!nodes.TryGetValue(currentProvider, out var list)) nodes[currentProvider] = list = [];
                list.Add((node.Groups["op"].Value, node.Groups["name"].Value));
            }
        }
    }

    [GeneratedRegex(@"(?:All nodes|Node\(s\)) placed on \[(?<ep>[^\]]+)\]\. Number of nodes: (?<n>\d+)")]
    private static partial Regex HeaderPattern();

    // "  Conv (/encoder/conv)", possibly several on one line separated by ", ".
    [GeneratedRegex(@"(?:^|,)\s+(?<op>[A-Za-z][A-Za-z0-9_]*) \((?<name>[^()]*)\)")]
    private static partial Regex NodePattern();
}
