using Workers.Core.Corpora;
using Workers.Core.Options;

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

    [Fact]
    public void Aliases_of_one_file_are_one_file()
    {
        // Issue 13: x.wav, ./x.wav, sub/../x.wav and the absolute path were four files, and the same
        // audio was processed four times. Before the fix this manifest was read as four entries.
        var abs = Path.Combine(_dir, "x.wav");
        var e = Assert.Throws<CorpusSourceException>(() => ManifestReader.Read(Write(string.Join("\n",
            "{\"path\": \"x.wav\", \"duration\": 1}",
            "{\"path\": \"./x.wav\", \"duration\": 1}",
            "{\"path\": \"sub/../x.wav\", \"duration\": 1}",
            $"{{\"path\": \"{abs}\", \"duration\": 1}}",
            // Siblings: a doubled slash, and a path that leaves the folder and comes back in.
            "{\"path\": \"a//y.wav\", \"duration\": 1}",
            "{\"path\": \"a/y.wav\", \"duration\": 1}",
            $"{{\"path\": \"../{Path.GetFileName(_dir)}/x.wav\", \"duration\": 1}}"))));
        Assert.Contains("line 2: path './x.wav' is the same file as 'x.wav' on line 1", e.Message);
        Assert.Contains("line 3: path 'sub/../x.wav' is the same file as 'x.wav' on line 1", e.Message);
        Assert.Contains($"line 4: path '{abs}' is the same file as 'x.wav' on line 1", e.Message);
        Assert.Contains("line 6: path 'a/y.wav' is the same file as 'a//y.wav' on line 5", e.Message);
        Assert.Contains("line 7: path '../", e.Message);
        Assert.DoesNotContain("line 1:", e.Message);
        Assert.DoesNotContain("line 5:", e.Message);
    }

    [Fact]
    public void Paths_are_stored_in_one_spelling_relative_inside_the_folder_absolute_outside()
    {
        var listing = ManifestReader.Read(Write(string.Join("\n",
            $"{{\"path\": \"{Path.Combine(_dir, "in", "a.wav")}\", \"duration\": 1}}",
            "{\"path\": \"./b/./c.wav\", \"duration\": 2}",
            "{\"path\": \"../elsewhere/d.wav\", \"duration\": 3}",
            "{\"path\": \"/data/e.wav\", \"duration\": 4}")));
        Assert.Equal(
            [new SourceFile("in/a.wav", 1), new SourceFile("b/c.wav", 2),
             new SourceFile(Path.Combine(Path.GetDirectoryName(_dir)!, "elsewhere", "d.wav"), 3), new SourceFile("/data/e.wav", 4)],
            listing.Files);
        var folder = Assert.Throws<CorpusSourceException>(() => ManifestReader.Read(Write("{\"path\": \"sub/..\", \"duration\": 1}")));
        Assert.Contains("is the manifest's folder, not an audio file", folder.Message);
    }

    [Fact]
    public void The_duration_ceiling_is_Corpus_Limits_MaxFileSeconds()
    {
        var path = Write("{\"path\": \"long.wav\", \"duration\": 7200}");
        Assert.Single(ManifestReader.Read(path).Files);
        var e = Assert.Throws<CorpusSourceException>(() => ManifestReader.Read(path, new CorpusLimits { MaxFileSeconds = 3600 }));
        Assert.Contains("line 1: \"duration\" 7200 s is over Corpus:Limits:MaxFileSeconds (3600 s", e.Message);
    }
}
