using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Workers.Core.Options;
using Workers.Fleet.Housekeeping;

namespace Workers.Cli.Hosting;

/// <summary>
/// The .NET Generic Host every command runs in (<see cref="CommandRunner"/>): configuration
/// (appsettings.json beside the binary, then in the working directory, then environment variables
/// such as <c>ConnectionStrings__Workers</c>), logging to stderr, the options each command needs
/// (<see cref="Settings"/>: bound once and validated together on start), the database
/// (<see cref="WorkersDatabase"/>) and the command's housekeeping services. Commands take what they use
/// by constructor (<see cref="CommandRunner.RunAsync{THandler}"/>): typed options, loggers,
/// <see cref="TimeProvider"/>, the database; none reads configuration itself.
/// </summary>
public static class CliHost
{
    public static HostApplicationBuilder CreateBuilder()
    {
        // Empty builder: no default sources, no console lifetime (signals belong to Shutdown, which drains).
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = Directory.GetCurrentDirectory() });
        builder.Configuration
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true)
            .AddJsonFile(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json"), optional: true)
            .AddEnvironmentVariables();
        builder.Logging
            .AddConfiguration(builder.Configuration.GetSection("Logging"))
            // Logs go to stderr so stdout stays clean for --json and export output.
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
            .AddFilter("Npgsql", LogLevel.Warning);
        // The host's own lifecycle lines ("Application started", "Hosting environment") would be noise on every command.
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        // A start refused by options validation is reported once, as a list, by CommandRunner (not as a stack trace).
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.Critical);
        builder.Services.AddSingleton<IHostLifetime, CommandLifetime>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSettings<QueueOptions>(QueueOptions.Section, o => o.Validate());
        // What every command may use; each command registers (and so validates on start) the sections it reads besides these.
        builder.Services.AddOptions<DatabaseSettings>().Configure<IConfiguration>((o, configuration) =>
        {
            o.ConnectionString = configuration.GetConnectionString("Workers");
            o.LocalRoot = configuration["Database:LocalRoot"];
        });
        builder.Services.AddSingleton<WorkersDatabase>();
        builder.Services.AddSingleton<IWorkersDatabase>(sp => sp.GetRequiredService<WorkersDatabase>());
        builder.Services.AddSettings<ModelsOptions>(ModelsOptions.Section, _ => []);
        builder.Services.AddSingleton<ModelFolder>();
        // The pipelines' names for every command; a worker adds the validation of those it serves.
        PipelinesOptions.Register(builder.Services, _ => []);
        return builder;
    }

    /// <summary>The command's own lifetime: it ends when its body returns. SIGTERM and Ctrl-C stay with
    /// <see cref="Shutdown"/>, which lets a worker drain instead of the host stopping it.</summary>
    private sealed class CommandLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
