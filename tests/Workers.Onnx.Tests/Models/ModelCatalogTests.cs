namespace Workers.Onnx.Tests.Models;

public sealed class ModelCatalogTests
{
    private const string OneModel = """
        { "models": [ {
            "name": "tiny", "kind": "model",
            "source": { "package": "@scope/pkg", "version": "1.2.3", "path": "package/tiny.onnx" },
            "file": "tiny.onnx",
            "sha256": "SHA",
            "sample_rate": 16000,
            "inputs": [ { "name": "x", "type": "float32", "shape": [-1, 4] } ],
            "outputs": [ { "name": "y", "type": "float32", "shape": [] } ]
        } ] }
        """;

    [Fact]
    public void RepositoryManifest_PinsBothSileroModels_AndNoRuntimeLibrary()
    {
        var catalog = ModelCatalog.Load(RepositoryPaths.Models);

        // Issue 16: ONNX Runtime comes from its NuGet package; models.json holds models only.
        Assert.Equal([ModelCatalog.SileroVadV5, ModelCatalog.SileroVadV6], catalog.Models.Select(m => m.Name));
        Assert.All(catalog.Models, m => Assert.Equal(ModelKind.Model, m.Kind));
        Assert.DoesNotContain(catalog.Models, m => m.Source.Package.Contains("onnxruntime", StringComparison.Ordinal));

        foreach (var name in new[] { ModelCatalog.SileroVadV5, ModelCatalog.SileroVadV6 })
        {
            var vad = catalog.Get(name);
            Assert.Equal(ModelKind.Model, vad.Kind);
            Assert.Equal("@ricky0123/vad-web@0.0.31", vad.Source.Spec);
            Assert.Equal(16000, vad.SampleRate);
            Assert.Equal(["input", "state", "sr"], vad.Inputs!.Select(i => i.Name));
            Assert.Equal(["output", "stateN"], vad.Outputs!.Select(o => o.Name));
        }
        Assert.NotEqual(catalog.Get(ModelCatalog.SileroVadV5).Sha256, catalog.Get(ModelCatalog.SileroVadV6).Sha256);
    }

    [Fact]
    public void Parse_ReadsEveryField()
    {
        var entry = ModelCatalog.Parse(OneModel.Replace("SHA", new string('a', 64))).Get("tiny");

        Assert.Equal("tiny.onnx", entry.File);
        Assert.Equal(new string('a', 64), entry.Sha256);
        Assert.Equal("x: float32[?, 4]", entry.Inputs![0].ToString());
        Assert.Empty(entry.Outputs![0].Shape);
    }

    [Fact]
    public void Parse_ReportsEveryProblemAtOnce()
    {
        var json = """
            { "models": [
              { "name": "a", "kind": "model", "source": { "package": "p", "version": "1", "path": "x" }, "file": "../escape.onnx", "sha256": "nothex" },
              { "name": "a", "kind": "model", "source": { "package": "", "version": "1", "path": "x" }, "file": "b.onnx", "sha256": "nothex" }
            ] }
            """;

        var e = Assert.Throws<ModelStoreException>(() => ModelCatalog.Parse(json, "test.json"));

        Assert.Contains(e.Problems, p => p.Contains("relative path inside the models root"));
        Assert.Contains(e.Problems, p => p.Contains("used twice"));
        Assert.Contains(e.Problems, p => p.Contains("source needs package"));
        Assert.Equal(2, e.Problems.Count(p => p.Contains("64 lower-case hex")));
        Assert.StartsWith("test.json is not valid", e.Message);
    }

    [Fact]
    public void Parse_RejectsAnUnknownKind()
    {
        var e = Assert.Throws<ModelStoreException>(() => ModelCatalog.Parse(OneModel.Replace("\"model\"", "\"plugin\"")));
        Assert.Contains("not valid", e.Message);
    }

    [Fact]
    public void Verify_MissingFile_SaysWhichAndNamesWorkersModelsFetch()
    {
        using var root = new TempDirectory();
        var catalog = ModelCatalog.Parse(OneModel.Replace("SHA", new string('a', 64)));

        var e = Assert.Throws<ModelStoreException>(() => catalog.Verify(root.Path));

        Assert.Contains("tiny: missing", e.Message);
        Assert.Contains(root.File("tiny.onnx"), e.Message);
        Assert.Contains("`workers models fetch`", e.Message);
        Assert.Equal(ModelFileState.Missing, catalog.Inspect(root.Path).Single().State);
    }

    [Fact]
    public void Verify_Sha256Mismatch_ShowsBothHashesAndNamesWorkersModelsFetch()
    {
        using var root = new TempDirectory();
        File.WriteAllText(root.File("tiny.onnx"), "not the pinned bytes");
        var catalog = ModelCatalog.Parse(OneModel.Replace("SHA", new string('a', 64)));

        var e = Assert.Throws<ModelStoreException>(() => catalog.Resolve("tiny", root.Path));

        Assert.Contains("sha256 mismatch", e.Message);
        Assert.Contains(new string('a', 64), e.Message);
        Assert.Contains(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("not the pinned bytes"u8)), e.Message);
        Assert.Contains("`workers models fetch`", e.Message);
        Assert.Throws<ModelStoreException>(() => catalog.Verify(root.Path));
    }

    [Fact]
    public void Resolve_ReturnsTheFullPath_WhenTheHashMatches()
    {
        using var root = new TempDirectory();
        File.WriteAllText(root.File("tiny.onnx"), "pinned");
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("pinned"u8));
        var catalog = ModelCatalog.Parse(OneModel.Replace("SHA", sha));

        Assert.Equal(root.File("tiny.onnx"), catalog.Resolve("tiny", root.Path));
        catalog.Verify(root.Path);
    }

    [Fact]
    public void Get_UnknownName_ListsTheKnownOnes()
    {
        var catalog = ModelCatalog.Load(RepositoryPaths.Models);
        var e = Assert.Throws<KeyNotFoundException>(() => catalog.Get("silero-vad-v7"));
        Assert.Contains("silero-vad-v5", e.Message);
    }

    [Theory]
    [InlineData("onnxruntime-node", "1.30.0", "onnxruntime-node-1.30.0.tgz")]
    [InlineData("@ricky0123/vad-web", "0.0.31", "ricky0123-vad-web-0.0.31.tgz")]
    public void TarballName_FollowsNpmPackNaming(string package, string version, string expected) =>
        Assert.Equal(expected, ModelFetcher.TarballName(new ModelSource(package, version, "package/x")));
}
