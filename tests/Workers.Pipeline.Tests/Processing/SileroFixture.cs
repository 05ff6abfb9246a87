using Workers.Audio.Synthesis;
using Workers.Onnx;
using Workers.Testing;

namespace Workers.Pipeline.Tests.Processing;

/// <summary>The real ONNX Runtime and Silero VAD v5 session, and a speech generator (espeak-ng), once per test run.</summary>
public sealed class SileroFixture : IAsyncLifetime
{
    public OnnxSession Session { get; private set; } = null!;
    public OrtEnvironment Environment { get; private set; } = null!;
    public ModelCatalog Catalog { get; private set; } = null!;
    public string ModelsRoot => Models.Root;
    public string SileroV5 => Catalog.Resolve(ModelCatalog.SileroVadV5, Models.Root);
    public SpeechCorpusGenerator Speech { get; private set; } = null!;
    public string WorkDir { get; } = Directory.CreateTempSubdirectory("workers-pipeline-tests-").FullName;

    public async Task InitializeAsync()
    {
        var catalog = Catalog = await Models.CatalogAsync();
        var env = Environment = OrtEnvironment.Load();
        Session = OnnxSession.Create(env, catalog.Resolve(ModelCatalog.SileroVadV5, Models.Root), new OnnxSessionOptions { ExecutionProvider = OnnxExecutionProvider.Cpu });
        Speech = new SpeechCorpusGenerator(Path.Combine(WorkDir, "espeak"));
    }

    public Task DisposeAsync()
    {
        Session.Dispose();
        Directory.Delete(WorkDir, true);
        return Task.CompletedTask;
    }
}

[CollectionDefinition(Name)]
public sealed class SileroCollection : ICollectionFixture<SileroFixture>
{
    public const string Name = "silero";
}
