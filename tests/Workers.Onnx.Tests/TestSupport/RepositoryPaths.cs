namespace Workers.Onnx.Tests;

/// <summary>The repository the tests run from: the folder holding Workers.sln, found by walking up.</summary>
public static class RepositoryPaths
{
    private static readonly Lazy<string> RootLazy = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Workers.sln"))) return dir.FullName;
        throw new InvalidOperationException($"No Workers.sln above {AppContext.BaseDirectory}.");
    });

    public static string Root => RootLazy.Value;

    /// <summary>The repository's models root (models/, with models.json).</summary>
    public static string Models => Path.Combine(Root, "models");
}
