namespace Workers.Onnx.Tests;

/// <summary>Fetches what models.json pins into the repository's models/ folder (through npm when a
/// file is missing, exactly as `workers models fetch` does) and creates the process's ONNX Runtime
/// environment once (the library comes from the Microsoft.ML.OnnxRuntime package).</summary>
public sealed class OnnxFixture : IAsyncLifetime
{
    public ModelCatalog Catalog { get; private set; } = null!;

    public IReadOnlyList<ModelFetchResult> FetchResults { get; private set; } = [];

    public List<string> FetchLog { get; } = [];

    public OrtEnvironment Environment { get; private set; } = null!;

    public string ModelsRoot => RepositoryPaths.Models;

    public string SileroV5 => Catalog.Resolve(ModelCatalog.SileroVadV5, ModelsRoot);

    public string SileroV6 => Catalog.Resolve(ModelCatalog.SileroVadV6, ModelsRoot);

    public async Task InitializeAsync()
    {
        Catalog = ModelCatalog.Load(ModelsRoot);
        FetchResults = await ModelFetcher.FetchAllAsync(Catalog, ModelsRoot, line => { lock (FetchLog) FetchLog.Add(line); });
        Environment = OrtEnvironment.Load();
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

/// <summary>Every test that touches ONNX Runtime shares one fixture (one library, one environment per process).</summary>
[CollectionDefinition(Name)]
public sealed class OnnxCollection : ICollectionFixture<OnnxFixture>
{
    public const string Name = "onnx";
}
