using Microsoft.Extensions.Options;
using Workers.Onnx;

namespace Workers.Cli.Hosting;

/// <summary>The <c>Models</c> section: where models.json and the model files are.</summary>
public sealed class ModelsOptions
{
    public const string Section = "Models";

    /// <summary>The folder holding models.json and the files it lists; relative to the working directory.</summary>
    /// <value>The default value is <c>models</c>.</value>
    public string Root { get; init; } = "models";
}

/// <summary>The models folder as configured (<see cref="ModelsOptions"/>): its full path and its catalog.</summary>
public sealed class ModelFolder(IOptions<ModelsOptions> options)
{
    /// <summary>Models:Root as a full path (an empty setting is the default, <c>models</c>).</summary>
    public string Root { get; } = Path.GetFullPath(options.Value.Root is { Length: > 0 } r ? r : "models");

    /// <summary>models.json of <see cref="Root"/>, read now (a command reads it when it needs it, not at start-up).</summary>
    /// <exception cref="ArgumentException">There is no models.json there; the message says which setting to change.</exception>
    public ModelCatalog Catalog()
    {
        var path = Path.Combine(Root, ModelCatalog.FileName);
        if (!File.Exists(path))
            throw new ArgumentException($"No {ModelCatalog.FileName} in {Root}. Set Models:Root (or Models__Root) to the folder holding models.json, e.g. the repository's models/.");
        return ModelCatalog.Load(path);
    }
}
