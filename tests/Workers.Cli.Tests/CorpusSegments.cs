using Workers.Testing;

namespace Workers.Cli.Tests;

/// <summary>A corpus's segments as written, in file and time order: what "equal to a clean run" compares.</summary>
internal static class CorpusSegments
{
    public static async Task<List<(string File, double Start, double End)>> OfAsync(TestSchema db, string corpus)
    {
        await using var cmd = db.DataSource.CreateCommand(
            "SELECT f.path, s.start_seconds, s.end_seconds FROM segments s JOIN files f USING (corpus_id, file_index) " +
            "JOIN corpora c ON c.id = s.corpus_id WHERE c.name = @name ORDER BY f.path, s.start_seconds");
        cmd.Parameters.AddWithValue("name", corpus);
        var list = new List<(string, double, double)>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) list.Add((r.GetString(0), r.GetDouble(1), r.GetDouble(2)));
        return list;
    }
}
