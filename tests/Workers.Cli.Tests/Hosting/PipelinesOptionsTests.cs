using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Workers.Cli.Hosting;

namespace Workers.Cli.Tests.Hosting;

/// <summary>
/// Issue 14: the Pipelines section is bound once, by the host's options (it was read with IConfiguration lookups in the
/// worker, the loader, export, enqueue and doctor). Every command sees the names; a worker's validation covers what it
/// serves, with full setting names.
/// </summary>
public sealed class PipelinesOptionsTests
{
    private static PipelinesOptions Bind(bool worker, params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value))).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration);
        PipelinesOptions.Register(services, _ => []);
        if (worker) PipelinesOptions.Register(services, o => o.ServedProblems());
        using var provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<PipelinesOptions>>().Value;
    }

    [Fact]
    public void Each_section_is_bound_with_its_vad_settings_stages_and_segment_audio()
    {
        var p = Bind(worker: true,
            ("Pipelines:strict:Threshold", "0.85"), ("Pipelines:strict:BatchSize", "16"), ("Pipelines:strict:SegmentAudio:Root", "/data/audio"),
            ("Pipelines:strict:SegmentAudio:Format", "flac"), ("Pipelines:energy:Model", "silero-vad-v6"),
            ("Pipelines:energy:Stages:0:Name", "energy"), ("Pipelines:energy:Stages:0:Model", "energy-test"), ("Pipelines:energy:Stages:0:BatchSeconds", "20"));

        Assert.Equal(["energy", "strict"], p.Names.Order(StringComparer.Ordinal));
        Assert.Equal(["energy", "strict", "vad"], p.Served); // every configured one, and the default
        var strict = p.Get("strict");
        Assert.Equal((0.85, 16, "silero-vad-v5", "/data/audio", "flac"), (strict.Vad.Threshold, strict.BatchSize, strict.Model, strict.SegmentAudioRoot, strict.SegmentAudioFormat));
        var energy = p.Get("energy");
        Assert.Equal("silero-vad-v6", energy.Model);
        Assert.Equal(("energy", "energy-test", 20.0), (energy.Stages[0].Name, energy.Stages[0].Model, energy.Stages[0].BatchSeconds));
        Assert.Null(energy.SegmentAudioRoot);
        // The default pipeline has its defaults when it is not configured; any other name is an error naming the section.
        Assert.Equal((0.5, 64), (p.Get("vad").Vad.Threshold, p.Get("vad").BatchSize));
        Assert.Contains("no Pipelines:nosuch section", Assert.Throws<ArgumentException>(() => p.Get("nosuch")).Message);
    }

    [Fact]
    public void A_worker_checks_only_what_it_serves_and_names_every_problem_with_its_full_setting()
    {
        (string, string)[] settings =
        [
            ("Fleet:Pipelines", "strict,nosuch"), ("Pipelines:strict:Threshold", "2"), ("Pipelines:strict:BatchSize", "0"),
            ("Pipelines:strict:Stages:0:Name", "a"), ("Pipelines:strict:Stages:0:Model", "m"), ("Pipelines:strict:Stages:1:Name", "a"), ("Pipelines:strict:Stages:1:Model", "m"),
            ("Pipelines:other:MinSpeechMs", "soon"), // not served: a worker does not refuse it, and no other command looks at it
        ];
        var e = Assert.Throws<OptionsValidationException>(() => Bind(worker: true, settings));
        Assert.Equal(
        [
            "Fleet:Pipelines names 'nosuch', but there is no Pipelines:nosuch section in appsettings.json; configure it or remove it from Fleet:Pipelines.",
            "Pipelines:strict:Threshold must be within 0..1 (is 2).",
            "Pipelines:strict:BatchSize must be within 1..4096 (is 0).",
            "Pipelines:strict:Stages: the name 'a' is used by 2 stages; give each stage its own name",
        ], e.Failures);
        // Commands that only need the names (enqueue, serve, export) start with the same settings.
        Assert.Equal(["other", "strict"], Bind(worker: false, settings).Names.Order(StringComparer.Ordinal));
    }
}
