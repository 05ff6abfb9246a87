using Workers.Onnx;

namespace Workers.Testing;

/// <summary>The repository's models/ folder, fetched on first use (ops/setup.sh normally has done it).</summary>
public static class Models
{
    private static readonly Lazy<Task<ModelCatalog>> Fetched = new(async () =>
    {
        var catalog = ModelCatalog.Load(Path.Combine(Root, ModelCatalog.FileName));
        await ModelFetcher.FetchAllAsync(catalog, Root);
        return catalog;
    });

    public static string RepositoryRoot { get; } = FindRoot();

    public static string Root => Path.Combine(RepositoryRoot, "models");

    public static Task<ModelCatalog> CatalogAsync() => Fetched.Value;

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Workers.sln"))) return d.FullName;
        throw new InvalidOperationException("Workers.sln not found above " + AppContext.BaseDirectory);
    }
}
