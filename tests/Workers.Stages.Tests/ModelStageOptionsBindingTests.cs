using System.Text;
using Microsoft.Extensions.Configuration;
using Workers.Stages;

namespace Workers.Stages.Tests;

/// <summary>The Paraformer entry the README gives binds to the stage's options as the worker binds them
/// (<c>Pipelines:&lt;name&gt;:Stages</c>), and validates (issue 15).</summary>
public sealed class ModelStageOptionsBindingTests
{
    private const string Readme = """
        { "Pipelines": {
          "asr": {
            "Stages": [
              { "Name": "asr", "Model": "paraformer-zh", "Input": "fbank", "BatchSeconds": 300, "MaxSegmentSeconds": 30,
                "Fbank": { "NumMelBins": 80, "WindowType": "hamming", "LfrM": 7, "LfrN": 6 },
                "Cmvn": { "File": "/data/models/paraformer-zh/am.mvn", "Sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" },
                "LengthsInput": "speech_lengths",
                "Buckets": [ 2, 4, 8, 16, 30 ],
                "Outputs": [ { "Name": "logits", "Keep": "text", "TokenNum": "token_num",
                               "Tokens": { "File": "/data/models/paraformer-zh/tokens.json", "Sha256": "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210" } } ] }
            ]
          }
        } }
        """;

    [Fact]
    public void The_readme_paraformer_stage_binds_and_validates()
    {
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(Readme))).Build();
        var stages = new List<ModelStageOptions>();
        configuration.GetSection("Pipelines:asr:Stages").Bind(stages);

        var o = Assert.Single(stages);
        Assert.Empty(o.Validate("Pipelines:asr:Stages:0"));
        Assert.True(o.IsFbank);
        Assert.Equal(("hamming", 80, 7, 6), (o.Fbank.WindowType, o.Fbank.NumMelBins, o.Fbank.LfrM, o.Fbank.LfrN));
        Assert.Equal("/data/models/paraformer-zh/am.mvn", o.Cmvn!.File);
        Assert.Equal([2, 4, 8, 16, 30], o.Buckets);
        var text = Assert.Single(o.Outputs);
        Assert.True(text.IsText);
        Assert.Equal("token_num", text.TokenNum);
        Assert.Equal("/data/models/paraformer-zh/tokens.json", text.Tokens!.File);
        Assert.Null(text.DropTokens); // the defaults apply
    }

    [Fact]
    public void Every_problem_of_the_new_keys_is_listed_with_its_key()
    {
        var o = new ModelStageOptions
        {
            Name = "asr", Model = "m", Cmvn = new StageFileOptions { File = "", Sha256 = "abc" },
            Outputs = [new StageOutputOptions { Name = "logits", Keep = "text", TokenNum = "" }, new StageOutputOptions { Name = "x", Keep = "words" }],
        };

        var problems = o.Validate("Pipelines:asr:Stages:0");

        Assert.Contains(problems, p => p.StartsWith("Pipelines:asr:Stages:0:Cmvn is set but Input is 'waveform'"));
        Assert.Contains(problems, p => p.StartsWith("Pipelines:asr:Stages:0:Cmvn:File is missing"));
        Assert.Contains(problems, p => p.StartsWith("Pipelines:asr:Stages:0:Cmvn:Sha256 must be the file's 64-hex-digit sha256") && p.Contains("got 'abc'"));
        Assert.Contains(problems, p => p.StartsWith("Pipelines:asr:Stages:0:Outputs:0:Tokens is missing"));
        Assert.Contains(problems, p => p.StartsWith("Pipelines:asr:Stages:0:Outputs:0:TokenNum is empty"));
        Assert.Contains(problems, p => p.StartsWith("Pipelines:asr:Stages:0:Outputs:1:Keep 'words' is not known: use 'vector', 'topk' or 'text'"));
    }
}
