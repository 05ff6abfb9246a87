using Workers.Core.Corpora;
using Workers.Postgres.Corpora;
using Workers.Testing;

namespace Workers.Postgres.Tests;

internal static class Seed
{
    /// <summary>A manifest-like corpus of <paramref name="shards"/> files of 60 s each, one file per shard.</summary>
    public static async Task<long> CorpusAsync(TestSchema db, TimeProvider time, int shards, string name = "c", string queue = "default",
        int priority = 0, int maxAttempts = 5, string pipeline = "vad")
    {
        var files = Enumerable.Range(0, shards).Select(i => new SourceFile($"f{i:000000}.wav", 60)).ToList();
        var listing = new CorpusListing("manifest", "/corpus/manifest.jsonl", "/corpus", files, []);
        var plan = await EnqueuePlanner.PlanAsync(listing, probe: null, 60);
        return await new CorpusWriter(db.DataSource, time).WriteAsync(plan, new EnqueueRequest(name, pipeline, queue, priority, maxAttempts));
    }

}
