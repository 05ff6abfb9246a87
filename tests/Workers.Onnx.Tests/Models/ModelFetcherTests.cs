namespace Workers.Onnx.Tests.Models;

[Collection(OnnxCollection.Name)]
public sealed class ModelFetcherTests(OnnxFixture fixture)
{
    // Tarballs the fixture's fetch left in the repository cache; reused so these tests need no network.
    private ModelFetcherOptions SharedCache => new() { CacheDirectory = Path.Combine(fixture.ModelsRoot, ".cache", "npm") };

    [Fact]
    public void RepositoryModels_AreFetchedAndVerified()
    {
        fixture.Catalog.Verify(fixture.ModelsRoot);
        Assert.Equal(fixture.Catalog.Models.Count, fixture.FetchResults.Count);
        Assert.All(fixture.FetchResults, r => Assert.True(File.Exists(r.Path)));
    }

    [Fact]
    public async Task Fetch_IntoAnEmptyRoot_WritesEveryFile_ThenASecondFetchTouchesNothing()
    {
        using var root = new TempDirectory();
        var log = new List<string>();

        var first = await ModelFetcher.FetchAllAsync(fixture.Catalog, root.Path, SharedCache, log.Add);

        Assert.All(first, r => Assert.Equal(ModelFetchOutcome.Fetched, r.Outcome));
        fixture.Catalog.Verify(root.Path);
        Assert.Empty(Directory.EnumerateFiles(root.Path, "*.partial", SearchOption.AllDirectories));
        var written = first.ToDictionary(r => r.Path, r => File.GetLastWriteTimeUtc(r.Path));

        var second = await ModelFetcher.FetchAllAsync(fixture.Catalog, root.Path, SharedCache, log.Add);

        Assert.All(second, r => Assert.Equal(ModelFetchOutcome.AlreadyPresent, r.Outcome));
        Assert.All(second, r => Assert.Equal(written[r.Path], File.GetLastWriteTimeUtc(r.Path)));
        Assert.Contains(log, l => l.Contains("up to date"));
    }

    [Fact]
    public async Task Fetch_ReplacesAFileWhoseHashIsWrong()
    {
        using var root = new TempDirectory();
        var entry = fixture.Catalog.Get(ModelCatalog.SileroVadV5);
        File.WriteAllText(entry.PathUnder(root.Path), "truncated download");

        var result = await ModelFetcher.FetchAsync(entry, root.Path, SharedCache);

        Assert.Equal(ModelFetchOutcome.Replaced, result.Outcome);
        Assert.Equal(ModelFileState.Ok, fixture.Catalog.Inspect(root.Path).Single(s => s.Entry == entry).State);
    }

    [Fact]
    public async Task Fetch_WhenThePinnedHashIsWrong_FailsLoudlyAndWritesNothing()
    {
        using var root = new TempDirectory();
        var entry = fixture.Catalog.Get(ModelCatalog.SileroVadV5) with { Sha256 = new string('0', 64) };

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => ModelFetcher.FetchAsync(entry, root.Path, SharedCache));

        Assert.Contains(fixture.Catalog.Get(ModelCatalog.SileroVadV5).Sha256, e.Message); // what the bytes really hash to
        Assert.Contains("pins " + new string('0', 64), e.Message);
        Assert.False(File.Exists(entry.PathUnder(root.Path)));
        Assert.Empty(Directory.EnumerateFiles(root.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Fetch_WhenThePackageLacksThePath_SaysWhichPath()
    {
        using var root = new TempDirectory();
        var real = fixture.Catalog.Get(ModelCatalog.SileroVadV5);
        var entry = real with { Source = real.Source with { Path = "package/dist/silero_vad_v9.onnx" } };

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => ModelFetcher.FetchAsync(entry, root.Path, SharedCache));

        Assert.Contains("has no file package/dist/silero_vad_v9.onnx", e.Message);
    }
}
