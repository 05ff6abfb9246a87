using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Workers.Onnx;

namespace Workers.Cli.Hosting;

/// <summary>The <c>Inference</c> section (ONNX Runtime session settings) for the one validation path (<see cref="Settings"/>).</summary>
public static class InferenceSettings
{
    public const string Section = "Inference";

    /// <summary>The section's problems with their full setting names.</summary>
    public static IEnumerable<string> Problems(OnnxSessionOptions o) => o.Validate().Select(p => Section + ":" + p);

    /// <summary>Binds <c>Inference</c> as <see cref="OnnxSessionOptions"/>; with <paramref name="validate"/> false only values that
    /// do not parse are problems (`workers doctor` reports on any provider, it does not refuse one).</summary>
    public static OptionsBuilder<OnnxSessionOptions> AddInference(this IServiceCollection services, bool validate = true) =>
        services.AddSettings<OnnxSessionOptions>(Section, validate ? Problems : _ => []);

    /// <summary>Inference:ExecutionProvider as the worker processes' environment spells it (auto, cuda or cpu).</summary>
    public static string ProviderName(this OnnxSessionOptions o) => o.ExecutionProvider.ToString().ToLowerInvariant();
}
