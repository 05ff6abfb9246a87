using Workers.Core.Corpora;

namespace Workers.Core.Tests.Corpora;

public sealed class FolderScannerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("workers-scan-").FullName;
    private readonly string _outside = Directory.CreateTempSubdirectory("workers-outside-").FullName;

    public void Dispose()
    {
        Directory.Delete(_root, true);
        Directory.Delete(_outside, true);
    }

    private string Touch(string rel)
    {
        var p = Path.Combine(_root, rel);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllText(p, "x");
        return p;
    }

    [Fact]
    public void Finds_audio_recursively_in_any_case_and_ignores_other_files()
    {
        Touch("a/one.WAV");
        Touch("a/b/two.flac");
        Touch("three.Mp3");
        Touch("x/four.ogg");
        Touch("x/five.opus");
        Touch("x/six.m4a");
        Touch("notes.txt");
        Touch("x/seven.wav.bak");
        var listing = FolderScanner.Scan(_root);
        Assert.Equal(["a/b/two.flac", "a/one.WAV", "three.Mp3", "x/five.opus", "x/four.ogg", "x/six.m4a"], listing.Files.Select(f => f.Path));
        Assert.All(listing.Files, f => Assert.Null(f.DurationSeconds));
        Assert.Equal("folder", listing.Kind);
    }

    [Fact]
    public void Symlinks_leaving_the_folder_and_symlink_loops_are_skipped_and_reported()
    {
        Touch("in/real.wav");
        File.WriteAllText(Path.Combine(_outside, "secret.wav"), "x");
        File.CreateSymbolicLink(Path.Combine(_root, "in/escape.wav"), Path.Combine(_outside, "secret.wav"));
        Directory.CreateSymbolicLink(Path.Combine(_root, "outdir"), _outside);
        Directory.CreateSymbolicLink(Path.Combine(_root, "in/loop"), Path.Combine(_root, "in"));
        File.CreateSymbolicLink(Path.Combine(_root, "l1.wav"), Path.Combine(_root, "l2.wav"));
        File.CreateSymbolicLink(Path.Combine(_root, "l2.wav"), Path.Combine(_root, "l1.wav"));
        File.CreateSymbolicLink(Path.Combine(_root, "inside-link.wav"), Path.Combine(_root, "in/real.wav"));

        var listing = FolderScanner.Scan(_root);

        // A link inside the folder is followed, but the file it reaches is listed once (issue 13).
        Assert.Equal(["in/real.wav"], listing.Files.Select(f => f.Path));
        var skipped = listing.Skipped.ToDictionary(s => s.Path, s => s.Reason);
        Assert.Contains("the same file as 'in/real.wav'", skipped["inside-link.wav"]);
        Assert.Contains("outside the corpus folder", skipped["in/escape.wav"]);
        Assert.Contains("outside the corpus folder", skipped["outdir"]);
        Assert.Contains("loop", skipped["in/loop"]);
        Assert.Contains("loop", skipped["l1.wav"]);
        Assert.Contains("loop", skipped["l2.wav"]);
    }

    [Fact]
    public void A_missing_path_or_an_empty_folder_is_a_clear_error()
    {
        Assert.Contains("does not exist", Assert.Throws<CorpusSourceException>(() => FolderScanner.Scan(Path.Combine(_root, "nope"))).Message);
        Touch("readme.txt");
        var e = Assert.Throws<CorpusSourceException>(() => FolderScanner.Scan(_root));
        Assert.Contains("No audio files found", e.Message);
        Assert.Contains(".flac", e.Message);
    }

    [Fact]
    public void A_file_reached_through_a_symlink_as_well_is_listed_once()
    {
        // Issue 13, the folder sibling of manifest aliases: a symlink to a file of the corpus (or a
        // folder link that reaches the same files again) listed the same audio twice before the fix.
        Touch("a/one.wav");
        Touch("b/two.wav");
        File.CreateSymbolicLink(Path.Combine(_root, "alias.wav"), Path.Combine(_root, "a", "one.wav"));
        Directory.CreateSymbolicLink(Path.Combine(_root, "c"), Path.Combine(_root, "b"));

        var listing = FolderScanner.Scan(_root);

        Assert.Equal(["a/one.wav", "b/two.wav"], listing.Files.Select(f => f.Path));
        Assert.Contains(listing.Skipped, s => s.Path == "alias.wav" && s.Reason.Contains("the same file as 'a/one.wav'"));
        Assert.Contains(listing.Skipped, s => s.Path == "c"); // the folder link reaches b's files again
    }

    [Fact]
    public void The_recorded_root_is_the_real_path()
    {
        // Workers check every opened file against the recorded root; a root reached through a
        // symlink is recorded as where it really is.
        Touch("x.wav");
        var link = Path.Combine(_outside, "link-to-root");
        Directory.CreateSymbolicLink(link, _root);

        var listing = FolderScanner.Scan(link);

        Assert.Equal(link, listing.Source);
        Assert.Equal(_root, listing.RootDir);
    }
}
