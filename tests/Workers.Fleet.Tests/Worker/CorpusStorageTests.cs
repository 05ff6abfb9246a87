using Workers.Fleet.Worker;
using Workers.Postgres.Queue;

namespace Workers.Fleet.Tests.Worker;

public sealed class CorpusStorageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("workers-storage-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static ShardItem Item(string path, string root) => new(0, 0, path, 0, 1, root);

    [Fact]
    public void A_missing_corpus_root_fails_the_shard_naming_the_folder()
    {
        var root = Path.Combine(_dir, "unmounted");
        var e = Assert.Throws<CorpusStorageUnavailableException>(() =>
            CorpusStorage.EnsureReachable([Item("a/x.wav", root), Item("b/y.wav", root)]));
        Assert.Contains(root, e.Message);
        Assert.Contains("mounted", e.Message);
    }

    [Fact]
    public void Missing_files_under_an_existing_root_are_per_file_failures_not_a_shard_failure()
    {
        CorpusStorage.EnsureReachable([Item("gone/x.wav", _dir), Item("also-gone.wav", _dir)]);
    }

    [Fact]
    public void Absolute_paths_need_one_existing_folder()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "present"));
        CorpusStorage.EnsureReachable([Item(Path.Combine(_dir, "missing", "a.wav"), "/manifest-dir"), Item(Path.Combine(_dir, "present", "b.wav"), "/manifest-dir")]);
        var e = Assert.Throws<CorpusStorageUnavailableException>(() =>
            CorpusStorage.EnsureReachable([Item(Path.Combine(_dir, "missing", "a.wav"), "/manifest-dir")]));
        Assert.Contains(Path.Combine(_dir, "missing"), e.Message);
    }

    [Fact]
    public void An_empty_shard_is_fine() => CorpusStorage.EnsureReachable([]);
}
