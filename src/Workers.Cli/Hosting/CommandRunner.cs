using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Postgres.Cluster;
using Workers.Postgres.Corpora;
using Workers.Postgres.Migrations;
using HostOptionsValidationException = Microsoft.Extensions.Options.OptionsValidationException;

namespace Workers.Cli.Hosting;

/// <summary>Runs a command body in the Generic Host (<see cref="CliHost"/>), turning the errors a person can act on
/// into one clear line on stderr and an exit code; anything else is a bug and keeps its stack trace.</summary>
public static class CommandRunner
{
    /// <param name="body">The command, given the host's services.</param>
    /// <param name="ct">Cancelled on the first SIGTERM/Ctrl-C (<see cref="Shutdown"/>).</param>
    /// <param name="services">The command's own options and housekeeping services, added before the host is built.</param>
    public static async Task<int> RunAsync(Func<IServiceProvider, CancellationToken, Task<int>> body, CancellationToken ct,
        Action<IServiceCollection>? services = null)
    {
        try
        {
            var builder = CliHost.CreateBuilder();
            services?.Invoke(builder.Services);
            var host = builder.Build();
            try
            {
                await StartAsync(host, ct);
                try { return await body(host.Services, ct); }
                finally { await host.StopAsync(CancellationToken.None); }
            }
            finally
            {
                if (host is IAsyncDisposable a) await a.DisposeAsync();
                else host.Dispose();
            }
        }
        catch (Exception e) when (e is CorpusSourceException or CorpusExistsException or CorpusNotFoundException or ArgumentException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return ExitCodes.BadInput;
        }
        catch (SchemaAheadException e)
        {
            // The operator must act (run the newer release); retrying cannot help, hence not Failure.
            Console.Error.WriteLine("error: " + e.Message);
            return ExitCodes.BadInput;
        }
        catch (OptionsValidationException e)
        {
            // Configuration is input too: nothing was started, the operator fixes a setting.
            Console.Error.WriteLine("error: " + e.Message);
            return ExitCodes.BadInput;
        }
        catch (Exception e) when (e is LocalClusterException or MigrationException or Workers.Onnx.OnnxRuntimeException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return ExitCodes.Failure;
        }
        catch (NpgsqlException e)
        {
            Console.Error.WriteLine($"error: database: {Describe(e)}. Check ConnectionStrings:Workers, or unset it to use the local cluster (`workers db status`).");
            return ExitCodes.Failure;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Console.Error.WriteLine("cancelled");
            return 130;
        }
    }

    /// <summary>
    /// A command whose body is a handler taking its services by constructor (typed options bound and validated when the
    /// host started, loggers, <see cref="TimeProvider"/>, <see cref="WorkersDatabase"/>): created once the host has
    /// started, so a bad setting is exit 2 before any handler exists. Its dependencies must be registered: the host's
    /// own (<see cref="CliHost"/>) and those <paramref name="services"/> adds.
    /// </summary>
    public static Task<int> RunAsync<THandler>(Func<THandler, CancellationToken, Task<int>> body, CancellationToken ct,
        Action<IServiceCollection>? services = null) where THandler : class =>
        RunAsync((sp, t) => body(ActivatorUtilities.CreateInstance<THandler>(sp), t), ct, services);

    /// <summary>Starts the host: every option registered with ValidateOnStart is validated here, and all problems of all
    /// sections are reported together as one <see cref="OptionsValidationException"/>.</summary>
    private static async Task StartAsync(IHost host, CancellationToken ct)
    {
        // Distinct: a section two parts of a command both validate (demo's Corpus) is reported once.
        try { await host.StartAsync(ct); }
        catch (HostOptionsValidationException e) { throw new OptionsValidationException([.. e.Failures.Distinct()]); }
        catch (AggregateException e) when (e.Flatten().InnerExceptions.All(x => x is HostOptionsValidationException))
        {
            throw new OptionsValidationException([.. e.Flatten().InnerExceptions.Cast<HostOptionsValidationException>().SelectMany(x => x.Failures).Distinct()]);
        }
    }

    /// <summary>Npgsql's message, with each host's own error where it wraps several (a multi-host connection string).</summary>
    private static string Describe(NpgsqlException e) => e.InnerException is AggregateException all
        ? e.Message.TrimEnd('.') + ": " + string.Join("; ", all.InnerExceptions.Select(x => x.Message.TrimEnd('.')))
        : e.Message.TrimEnd('.');
}
