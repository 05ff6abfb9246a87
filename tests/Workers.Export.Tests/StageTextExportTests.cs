using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Workers.Export;
using Workers.Postgres.Export;

namespace Workers.Export.Tests;

/// <summary>
/// A model stage's text (a Paraformer transcript kept with <c>"Keep": "text"</c>, issue 15) leaves every
/// export format as the stored string: UTF-8 as is, JSON's escapes where JSON needs them, under the stage's name.
/// </summary>
public sealed class StageTextExportTests
{
    // As PostgreSQL returns segment_results' jsonb: characters as themselves, quotes and newlines escaped.
    private const string Results = "{\"asr\": {\"logits\": \"你好 hello \\\"world\\\"\\n世界\"}, \"emotion\": {\"scores\": [0.5, 0.25]}}";
    private const string Expected = "\"asr\":{\"logits\":\"你好 hello \\\"world\\\"\\n世界\"},\"emotion\":{\"scores\":[0.5,0.25]}";

    [Fact]
    public void Jsonl_and_nemo_lines_carry_the_text_as_stored()
    {
        var segment = new ExportSegment(0, "a.wav", 10, 1, 2.5, 7) { Results = Results };
        var jsonl = new MemoryStream();
        using (var w = new SegmentJsonlWriter(jsonl, "c", "memory"))
        {
            w.Write(segment);
            w.Flush();
        }
        var line = Encoding.UTF8.GetString(jsonl.ToArray());
        Assert.Contains(Expected, line);
        Assert.Equal("你好 hello \"world\"\n世界", JsonDocument.Parse(line).RootElement.GetProperty("asr").GetProperty("logits").GetString());

        var nemo = new MemoryStream();
        using (var w = new NemoManifestWriter(nemo, "/corpus")) w.Write(segment);
        Assert.Contains(Expected, Encoding.UTF8.GetString(nemo.ToArray()));
    }

    [Fact]
    public void Lhotse_supervisions_carry_the_text_in_custom()
    {
        var dir = Directory.CreateTempSubdirectory("lhotse-text-").FullName;
        try
        {
            WriteWav(Path.Combine(dir, "a.wav"), 16000, 16000 * 3);
            using (var w = new LhotseManifestWriter(dir, dir, TextWriter.Null))
            {
                w.Write(new ExportSegment(0, "a.wav", 3, 1, 2.5, 7) { Results = Results });
                w.Commit();
            }
            using var gz = new GZipStream(File.OpenRead(Path.Combine(dir, "supervisions.jsonl.gz")), CompressionMode.Decompress);
            var line = new StreamReader(gz, Encoding.UTF8).ReadToEnd();
            Assert.Contains("\"custom\":{\"shard\":7," + Expected + "}", line);
        }
        finally { Directory.Delete(dir, true); }
    }

    private static void WriteWav(string path, int rate, int samples)
    {
        using var w = new BinaryWriter(File.Create(path));
        w.Write("RIFF"u8); w.Write(36 + samples * 2); w.Write("WAVE"u8);
        w.Write("fmt "u8); w.Write(16); w.Write((short)1); w.Write((short)1); w.Write(rate); w.Write(rate * 2); w.Write((short)2); w.Write((short)16);
        w.Write("data"u8); w.Write(samples * 2); w.Write(new byte[samples * 2]);
    }
}
