using Workers.Stages;

namespace Workers.Stages.Tests;

/// <summary>Token lists as FunASR (tokens.json) and sherpa-onnx (tokens.txt) ship them (issue 15).</summary>
public sealed class TokenListTests
{
    [Fact]
    public void Reads_a_json_list_and_text_lines_with_or_without_ids()
    {
        var json = TokenList.ParseJson("[\"<blank>\", \"<s>\", \"</s>\", \"你\", \"hel@@\", \"\u2581the\", \"<unk>\"]", "tokens.json");
        Assert.Equal(7, json.Count);
        Assert.Equal("你", json[3]);
        Assert.Equal("\u2581the", json[5]);
        Assert.Equal([0, 2, 6], json.IdsOf(["<blank>", "</s>", "<unk>", "<not there>"]).Order());

        var plain = TokenList.ParseLines("<blank>\n<s>\n</s>\n你\n", "tokens.txt");
        Assert.Equal(4, plain.Count);
        Assert.Equal("你", plain[3]);
        var withIds = TokenList.ParseLines("<blank> 0\r\n<s> 1\r\n好 2\r\n", "tokens.txt");
        Assert.Equal(["<blank>", "<s>", "好"], Enumerable.Range(0, withIds.Count).Select(i => withIds[i]));
    }

    [Fact]
    public void Load_tells_json_from_text_by_its_first_character()
    {
        var dir = Directory.CreateTempSubdirectory("tokens-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "a"), "  [\"x\", \"y\"]");
            File.WriteAllText(Path.Combine(dir, "b"), "x\ny\nz\n");
            Assert.Equal(2, TokenList.Load(Path.Combine(dir, "a")).Count);
            Assert.Equal(3, TokenList.Load(Path.Combine(dir, "b")).Count);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("[\"a\", 3]", "not a JSON list of token strings")]
    [InlineData("[]", "the token list is empty")]
    [InlineData("[\"a\", null]", "entry 1 is null")]
    public void A_damaged_json_list_says_what_is_wrong(string text, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => TokenList.ParseJson(text, "tokens.json"));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("tokens.json: ", e.Message);
    }

    [Theory]
    [InlineData("a 0\nb 2\n", "line 2 gives token 'b' the id 2; ids must count up from 0")]
    [InlineData("a\n\nb\n", "line 2 is empty")]
    [InlineData("a b c\n", "line 1 ('a b c') is not one token")]
    [InlineData("\n\n", "the token list is empty")]
    public void A_damaged_text_list_says_what_is_wrong(string text, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => TokenList.ParseLines(text, "tokens.txt"));
        Assert.Contains(expected, e.Message);
    }
}
