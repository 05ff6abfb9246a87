using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Workers.Core.Options;

namespace Workers.Cli.Hosting;

/// <summary>
/// The one way options are read: <see cref="AddSettings{T}(IServiceCollection, string, Func{T, IEnumerable{string}})"/> binds a section with
/// <c>AddOptions&lt;T&gt;().Bind</c>-like binding and validates it on start
/// (<c>ValidateOnStart</c>) through the options class's own problem list, so every problem of
/// every registered section is reported at once, each with its full setting name, before a
/// command does anything. A value that does not parse (Fleet:DecoderThreads=abc) is a problem
/// too, naming the accepted range, not a FormatException. Options classes are init-only: what
/// was validated is what runs.
/// </summary>
public static class Settings
{
    public static OptionsBuilder<T> AddSettings<T>(this IServiceCollection services, string section, Func<T, IEnumerable<string>> validate)
        where T : class, new()
    {
        services.AddSingleton<IValidateOptions<T>>(sp => new ProblemsValidator<T>(sp.GetRequiredService<IConfiguration>().GetSection(section), validate));
        return services.AddOptions<T>()
            .Configure<IConfiguration>((o, configuration) => Bind(configuration.GetSection(section), o, problems: null))
            .ValidateOnStart();
    }

    /// <summary>
    /// Settings that are not one section bound onto one object (<see cref="PipelinesOptions"/>: a section per
    /// pipeline), built by <paramref name="load"/> from the configuration when first asked for and validated on
    /// start like the others: <paramref name="validate"/> lists the problems. Each further call adds its own
    /// validation (a worker checks the pipelines it serves; `enqueue` only needs their names).
    /// </summary>
    public static OptionsBuilder<T> AddSettings<T>(this IServiceCollection services, Action<T, IConfiguration> load, Func<T, IEnumerable<string>> validate)
        where T : class, new()
    {
        services.AddSingleton<IValidateOptions<T>>(new DelegateValidator<T>(validate));
        var builder = services.AddOptions<T>().ValidateOnStart();
        if (!services.Any(d => d.ServiceType == typeof(IConfigureOptions<T>)))
            builder.Configure<IConfiguration>((o, configuration) => load(o, configuration));
        return builder;
    }

    /// <summary>
    /// Binds <paramref name="section"/> onto <paramref name="options"/>. Where the configuration binder
    /// refuses a value, the properties are bound one by one instead and each refused value becomes a
    /// problem ("Fleet:DrainSeconds must be a whole number within 0..86400 (is 'ten')"); with
    /// <paramref name="problems"/> null they are dropped (the validator finds them again).
    /// </summary>
    internal static void Bind(IConfigurationSection section, object options, List<string>? problems)
    {
        try
        {
            section.Bind(options);
            return;
        }
        catch (InvalidOperationException) { }
        foreach (var p in options.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.SetMethod is not { IsPublic: true }) continue;
            var child = section.GetSection(p.Name);
            if (!child.Exists()) continue;
            try
            {
                if (child.Get(p.PropertyType) is { } value) p.SetValue(options, value);
            }
            catch (InvalidOperationException)
            {
                problems?.Add($"{child.Path} must be {SettingRanges.Describe(p)} (is '{child.Value}').");
            }
        }
    }

    private sealed class DelegateValidator<T>(Func<T, IEnumerable<string>> validate) : IValidateOptions<T> where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options) =>
            validate(options).ToList() is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems) : ValidateOptionsResult.Success;
    }

    private sealed class ProblemsValidator<T>(IConfigurationSection section, Func<T, IEnumerable<string>> validate) : IValidateOptions<T>
        where T : class, new()
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            var problems = new List<string>();
            Bind(section, new T(), problems); // values that do not parse; those properties kept their defaults in options
            problems.AddRange(validate(options));
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}
