namespace Workers.Onnx;

/// <summary>A model input or output as ORT reports it.</summary>
/// <param name="Name">The name to bind by.</param>
/// <param name="Kind">Tensor, sequence, map, ...</param>
/// <param name="ElementType">Element type for tensors; Undefined otherwise.</param>
/// <param name="Shape">Dimensions; -1 where the model leaves a dimension free.</param>
/// <param name="SymbolicShape">The model's name for each dimension, or "" where it has none.</param>
public sealed record OnnxNodeInfo(string Name, OnnxValueKind Kind, TensorElementType ElementType, IReadOnlyList<long> Shape, IReadOnlyList<string> SymbolicShape)
{
    /// <summary>Shape as text: fixed dimensions as numbers, free ones by their symbolic name or "?".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape.Select((d, i) => d >= 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : SymbolicShape[i] is { Length: > 0 } s ? s : "?")) + "]";

    public override string ToString() => $"{Name}: {TensorElementTypes.Name(ElementType)}{ShapeText}";
}

/// <summary>The model's metadata (SessionGetModelMetadata).</summary>
public sealed record OnnxModelMetadata(string ProducerName, string GraphName, long Version);
