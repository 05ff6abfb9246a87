using Workers.Core.Corpora;

namespace Workers.Core.Tests.Corpora;

public sealed class ManifestReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-manifest-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string text)
    {
        var p = Path.Combine(_dir, "m.jsonl");
        File.WriteAllText(p, text);
        return p;
    }

    [Fact]
    public void Reads_paths_and_trusted_durations_skipping_blank_lines_and_extra_keys()
    {
        var listing = ManifestReader.Read(Write("{\"path\": \"a/x.flac\", \"duration\": 12.5, \"speaker\": {\"id\": 3}}\r\n\n  \n{\"duration\": 3, \"path\": \"/abs/y.wav\"}\n"));
        Assert.Equal([new SourceFile("a/x.flac", 12.5), new SourceFile("/abs/y.wav", 3)], listing.Files);
        Assert.Equal(_dir, listing.RootDir);
        Assert.Equal("manifest", listing.Kind);
    }

    [Fact]
    public void Malformed_lines_are_reported_by_number_and_nothing_is_read()
    {
        var text = string.Join("\n",
            "{\"path\": \"ok.wav\", \"duration\": 1}",
            "{\"path\": \"no-duration.wav\"}",
            "not json",
            "{\"path\": \"neg.wav\", \"duration\": -3}",
            "{\"path\": \"huge.wav\", \"duration\": 86400000}",
            "{\"path\": 7, \"duration\": 1}",
            "{\"path\": \"ok.wav\", \"duration\": 2}",
            "[1,2]",
            "{\"path\": \"s.wav\", \"duration\": \"12\"}");
        var e = Assert.Throws<CorpusSourceException>(() => ManifestReader.Read(Write(text)));
        Assert.Contains("line 2: missing \"duration\"", e.Message);
        Assert.Contains("line 3: invalid JSON", e.Message);
        Assert.Contains("line 4: \"duration\" must be a positive number", e.Message);
        Assert.Contains("line 5: \"duration\" 86400000 s is over", e.Message);
        Assert.Contains("line 6: \"path\" must be a string", e.Message);
        Assert.Contains("line 7: path 'ok.wav' already listed on line 1", e.Message);
        Assert.Contains("line 8: not a JSON object", e.Message);
        Assert.Contains("line 9: \"duration\" must be a number", e.Message);
        Assert.DoesNotContain("line 1:", e.Message);
    }

    [Fact]
    public void Missing_and_empty_manifests_are_clear_errors()
    {
        Assert.Contains("does not exist", Assert.Throws<CorpusSourceException>(() => ManifestReader.Read(Path.Combine(_dir, "none.jsonl"))).Message);
        Assert.Contains("lists no files", Assert.Throws<CorpusSourceException>(() => ManifestReader.Read(Write("\n\n"))).Message);
    }
}
