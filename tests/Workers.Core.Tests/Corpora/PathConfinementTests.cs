using Workers.Core.Corpora;
using Workers.Core.Options;

namespace Workers.Core.Tests.Corpora;

/// <summary>Folders asked for over the dashboard stay inside Corpus:AllowedRoots, on real files and symlinks.</summary>
public sealed class PathConfinementTests : IDisposable
{
    private readonly string _base = Directory.CreateTempSubdirectory("workers-confine-").FullName;
    private readonly string _root;
    private readonly string _outside;

    public PathConfinementTests()
    {
        _root = Directory.CreateDirectory(Path.Combine(_base, "corpora")).FullName;
        _outside = Directory.CreateDirectory(Path.Combine(_base, "secret")).FullName;
        Directory.CreateDirectory(Path.Combine(_root, "a", "b"));
        File.WriteAllText(Path.Combine(_root, "a", "file.wav"), "x");
        File.WriteAllText(Path.Combine(_outside, "x.wav"), "x");
        Directory.CreateDirectory(Path.Combine(_outside, "deep"));
    }

    public void Dispose() => Directory.Delete(_base, true);

    private PathConfinement Confine() => new([_root]);

    private string Refused(string path) => Assert.Throws<PathConfinementException>(() => Confine().Resolve(path)).Message;

    [Fact]
    public void The_root_itself_and_subfolders_are_accepted_absolute_or_relative_to_the_first_root()
    {
        Assert.Equal(_root, Confine().Resolve(_root).RealPath);
        Assert.Equal(_root, Confine().Resolve(_root + "/").RealPath);
        var sub = Confine().Resolve("a/b");
        Assert.Equal(Path.Combine(_root, "a", "b"), sub.RealPath);
        Assert.Equal(_root, sub.Root);
        Assert.Equal(Path.Combine(_root, "a"), Confine().Resolve(Path.Combine(_root, "a")).RealPath);
        Assert.Equal(Path.Combine(_root, "a"), Confine().Resolve("./a").RealPath);
    }

    [Fact]
    public void Dot_dot_is_refused_even_when_it_would_stay_inside()
    {
        Assert.Contains("'..'", Refused("../secret"));
        Assert.Contains("'..'", Refused(Path.Combine(_root, "..", "secret")));
        Assert.Contains("'..'", Refused("a/../a"));
        Assert.Contains("'..'", Refused("a/..\\..\\secret"));
    }

    [Fact]
    public void An_absolute_path_outside_every_root_is_refused()
    {
        var m = Refused(_outside);
        Assert.Contains("outside the allowed corpus roots", m);
        Assert.Contains(_root, m);
        Assert.Contains("Corpus:AllowedRoots", m);
        Assert.Contains("outside the allowed corpus roots", Refused("/"));
        // A sibling whose name starts like the root is not inside it.
        var sibling = Directory.CreateDirectory(_root + "-other").FullName;
        Assert.Contains("outside", Refused(sibling));
    }

    [Fact]
    public void A_symlink_inside_the_root_pointing_outside_is_refused_as_the_folder_itself()
    {
        Directory.CreateSymbolicLink(Path.Combine(_root, "escape"), _outside);
        var m = Refused("escape");
        Assert.Contains("through the symlink", m);
        Assert.Contains(_outside, m);
        Assert.Contains("outside the allowed corpus roots", Refused(Path.Combine(_root, "escape")));
    }

    [Fact]
    public void A_symlink_inside_the_root_pointing_outside_is_refused_as_a_parent_component()
    {
        Directory.CreateSymbolicLink(Path.Combine(_root, "a", "up"), "../../secret"); // relative target
        var m = Refused("a/up/deep");
        Assert.Contains("through the symlink", m);
        Assert.Contains(Path.Combine(_outside, "deep"), m);
    }

    [Fact]
    public void A_symlink_that_stays_inside_is_followed_and_the_real_path_returned()
    {
        Directory.CreateSymbolicLink(Path.Combine(_root, "alias"), Path.Combine(_root, "a", "b"));
        var f = Confine().Resolve("alias");
        Assert.Equal(Path.Combine(_root, "a", "b"), f.RealPath);
        Assert.Equal(Path.Combine(_root, "alias"), f.FullPath);
    }

    [Fact]
    public void A_root_that_is_itself_a_symlink_works_and_confines_to_its_target()
    {
        var link = Path.Combine(_base, "link-to-corpora");
        Directory.CreateSymbolicLink(link, _root);
        var c = new PathConfinement([link]);
        Assert.Equal(Path.Combine(_root, "a"), c.Resolve("a").RealPath);
        Assert.Equal(Path.Combine(_root, "a"), c.Resolve(Path.Combine(_root, "a")).RealPath);
        Assert.Throws<PathConfinementException>(() => c.Resolve(_outside));
    }

    [Fact]
    public void A_nonexistent_path_and_a_file_are_refused_with_what_to_do()
    {
        var missing = Refused("nope/deeper");
        Assert.Contains("does not exist", missing);
        Assert.Contains("relative paths start at " + _root, missing);
        var file = Refused("a/file.wav");
        Assert.Contains("is a file, not a folder", file);
        Assert.Contains("No folder given", Refused(" "));
        Assert.Contains("control characters", Refused("a\nb"));
    }

    [Fact]
    public void A_dangling_symlink_is_refused_as_nonexistent_and_a_loop_as_unresolvable()
    {
        Directory.CreateSymbolicLink(Path.Combine(_root, "gone"), Path.Combine(_root, "never"));
        Assert.Contains("does not exist", Refused("gone"));
        File.CreateSymbolicLink(Path.Combine(_root, "loop1"), Path.Combine(_root, "loop2"));
        File.CreateSymbolicLink(Path.Combine(_root, "loop2"), Path.Combine(_root, "loop1"));
        Assert.Throws<PathConfinementException>(() => Confine().Resolve("loop1"));
    }

    [Fact]
    public void Options_require_absolute_existing_folders()
    {
        Assert.Empty(new CorpusOptions { AllowedRoots = [_root] }.Validate());
        var problems = new CorpusOptions { AllowedRoots = ["relative/dir", Path.Combine(_base, "missing"), Path.Combine(_root, "a", "file.wav"), ""], ScanTimeoutSeconds = 0 }.Validate();
        Assert.Equal(5, problems.Count);
        Assert.Contains("not an absolute path", problems[0]);
        Assert.Contains("not an existing folder", problems[1]);
        Assert.Contains("(it is a file)", problems[2]);
        Assert.Contains("is empty", problems[3]);
        Assert.Contains("ScanTimeoutSeconds", problems[4]);
        Assert.False(new CorpusOptions().Enabled);
    }
}
