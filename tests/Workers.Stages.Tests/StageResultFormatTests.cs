using Workers.Stages;

namespace Workers.Stages.Tests;

/// <summary>A stage result as stored in segment_results and exported: vectors, top-k and text (issue 15).</summary>
public sealed class StageResultFormatTests
{
    [Fact]
    public void Vectors_topk_and_text_each_under_their_output_name()
    {
        StageOutputOptions[] outputs =
        [
            new() { Name = "embedding" },
            new() { Name = "scores", Keep = "topk", TopK = 2, Labels = ["angry", "happy", "sad"] },
            new() { Name = "logits", Keep = "text", Tokens = new StageFileOptions { File = "tokens.json", Sha256 = new string('a', 64) } },
        ];
        var result = new StageResult(3, [[0.5f, float.NaN], [0.1f, 0.7f, 0.2f], []], [null, null, "你好 \"hello\"\nworld"]);

        var json = StageResultFormat.Json(outputs, result);

        Assert.Equal("{\"embedding\":[0.5,null],\"scores\":{\"labels\":[\"happy\",\"sad\"],\"scores\":[0.7,0.2]},\"logits\":\"你好 \\\"hello\\\"\\nworld\"}", json);
        Assert.Equal("你好 \"hello\"\nworld", System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("logits").GetString());
    }
}
