using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Workers.Core.Options;
using Workers.Onnx;
using Workers.Pipeline.Vad;
using Workers.Stages;

namespace Workers.Cli.Hosting;

/// <summary>One section of <c>Pipelines</c>, as bound when the host was built.</summary>
public sealed class PipelineSettings
{
    public required string Name { get; init; }

    /// <summary>The VAD settings (<c>Pipelines:NAME:Threshold</c>, ...).</summary>
    public VadOptions Vad { get; init; } = new();

    /// <summary>Streams per VAD run.</summary>
    /// <value>The default value is 64.</value>
    public int BatchSize { get; init; } = 64;

    /// <summary>The VAD model's name in models.json.</summary>
    /// <value>The default value is <see cref="ModelCatalog.SileroVadV5"/>.</value>
    public string Model { get; init; } = ModelCatalog.SileroVadV5;

    /// <summary>The model stages run on the VAD's segments (<c>Pipelines:NAME:Stages</c>).</summary>
    /// <value>The default value is none.</value>
    public IReadOnlyList<ModelStageOptions> Stages { get; init; } = [];

    /// <summary><c>Pipelines:NAME:SegmentAudio:Root</c>: where the workers write segment audio; null when they do not.</summary>
    public string? SegmentAudioRoot { get; init; }

    /// <summary><c>Pipelines:NAME:SegmentAudio:Format</c> (wav or flac); null is the default.</summary>
    public string? SegmentAudioFormat { get; init; }

    /// <summary>Values of this section that did not parse, with their setting names.</summary>
    internal IReadOnlyList<string> BindProblems { get; init; } = [];
}

/// <summary>
/// The <c>Pipelines</c> section (one sub-section per pipeline) and <c>Fleet:Pipelines</c> (which of them a
/// worker serves), bound once when the host is built (<see cref="Settings.AddSettings{T}(IServiceCollection, Action{T, IConfiguration}, Func{T, IEnumerable{string}})"/>).
/// Every command sees the configured names; the worker process validates what it serves on start
/// (<see cref="ServedProblems"/>): VAD settings, batch size and stages, each problem with its full setting name.
/// </summary>
public sealed class PipelinesOptions
{
    public const string Section = "Pipelines";

    /// <summary>The pipeline every worker loads first (its VAD session and model), configured or not.</summary>
    public const string Default = "vad";

    private readonly Dictionary<string, PipelineSettings> _byName = new(StringComparer.Ordinal);
    private readonly List<string> _names = [];
    private string[] _served = [];

    /// <summary>The configured pipelines (the sections of Pipelines), which `workers enqueue` and the dashboard's form accept.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>The pipelines a worker serves: those <c>Fleet:Pipelines</c> names, or every configured one and <c>vad</c>; sorted.</summary>
    public IReadOnlyList<string> Served => _served;

    /// <summary>The settings of <paramref name="name"/>; <see cref="Default"/> has its defaults when it is not configured.</summary>
    /// <exception cref="ArgumentException">No such section.</exception>
    public PipelineSettings Get(string name) =>
        _byName.TryGetValue(name, out var p) ? p
        : name == Default ? new PipelineSettings { Name = Default }
        : throw new ArgumentException($"Pipeline '{name}' is not configured (no Pipelines:{name} section in appsettings.json).");

    /// <summary>Registers the section for the host (bound once, when first asked for), with <paramref name="validate"/> run on
    /// start: every command registers it with no check (<see cref="CliHost"/>), a worker adds <see cref="ServedProblems"/>.</summary>
    public static void Register(IServiceCollection services, Func<PipelinesOptions, IEnumerable<string>> validate) =>
        services.AddSettings<PipelinesOptions>((o, configuration) => o.Load(configuration), validate);

    /// <summary>Every problem of the pipelines a worker serves (and of <see cref="Default"/>, which it always loads).</summary>
    public IEnumerable<string> ServedProblems()
    {
        foreach (var name in _served.Where(n => !_byName.ContainsKey(n) && n != Default))
            yield return $"Fleet:Pipelines names '{name}', but there is no Pipelines:{name} section in appsettings.json; configure it or remove it from Fleet:Pipelines.";
        foreach (var name in _served.Append(Default).Distinct(StringComparer.Ordinal).Where(n => _byName.ContainsKey(n) || n == Default))
        {
            var p = Get(name);
            foreach (var problem in p.BindProblems) yield return problem;
            // VadOptions names its settings as the default pipeline's; here they are this pipeline's.
            foreach (var problem in p.Vad.Validate($"{Section}:{name}")) yield return problem;
            if (p.BatchSize is < 1 or > 4096) yield return $"{Section}:{name}:BatchSize must be within 1..4096 (is {p.BatchSize}).";
            foreach (var problem in p.Stages.SelectMany((s, i) => s.Validate($"{Section}:{name}:Stages:{i}"))) yield return problem;
            foreach (var dup in p.Stages.GroupBy(s => s.Name).Where(g => g.Count() > 1 && g.Key.Length > 0))
                yield return $"{Section}:{name}:Stages: the name '{dup.Key}' is used by {dup.Count()} stages; give each stage its own name";
        }
    }

    /// <summary>Binds the sections (called once, by the host's options). Values that do not parse are kept as problems.</summary>
    internal void Load(IConfiguration configuration)
    {
        _byName.Clear();
        _names.Clear();
        foreach (var section in configuration.GetSection(Section).GetChildren())
        {
            var problems = new List<string>();
            var vad = new VadOptions();
            Settings.Bind(section, vad, problems);
            var model = new PipelineModel();
            Settings.Bind(section, model, problems);
            var stages = new List<ModelStageOptions>();
            foreach (var child in section.GetSection("Stages").GetChildren())
            {
                var stage = new ModelStageOptions();
                Settings.Bind(child, stage, problems);
                stages.Add(stage);
            }
            var audio = section.GetSection("SegmentAudio");
            _names.Add(section.Key);
            _byName[section.Key] = new PipelineSettings
            {
                Name = section.Key,
                Vad = vad,
                BatchSize = model.BatchSize,
                Model = model.Model is { Length: > 0 } m ? m : ModelCatalog.SileroVadV5,
                Stages = stages,
                SegmentAudioRoot = audio["Root"] is { Length: > 0 } root ? root : null,
                SegmentAudioFormat = audio["Format"],
                BindProblems = problems,
            };
        }
        var served = configuration["Fleet:Pipelines"] is { Length: > 0 } list
            ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : _names.Append(Default).ToArray();
        _served = [.. served.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
    }

    /// <summary>The two settings of a pipeline section besides the VAD's and the stages.</summary>
    private sealed class PipelineModel
    {
        public int BatchSize { get; init; } = 64;
        public string Model { get; init; } = "";
    }
}
