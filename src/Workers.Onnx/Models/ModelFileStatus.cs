namespace Workers.Onnx;

/// <summary>State of one pinned file under the models root.</summary>
public enum ModelFileState
{
    /// <summary>Present with the pinned sha256.</summary>
    Ok,

    /// <summary>Not there.</summary>
    Missing,

    /// <summary>There, but its sha256 differs from models.json.</summary>
    HashMismatch,
}

/// <summary>What <see cref="ModelCatalog.Inspect"/> found for one entry.</summary>
public sealed record ModelFileStatus(ModelEntry Entry, string Path, ModelFileState State, string? ActualSha256)
{
    public override string ToString() => State switch
    {
        ModelFileState.Ok => $"{Entry.Name}: ok ({Path})",
        ModelFileState.Missing => $"{Entry.Name}: missing {Path} (from {Entry.Source.Spec})",
        _ => $"{Entry.Name}: sha256 mismatch for {Path}: models.json pins {Entry.Sha256}, the file has {ActualSha256}",
    };
}
