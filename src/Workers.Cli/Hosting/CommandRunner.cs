using Npgsql;
using Workers.Core.Corpora;
using Workers.Core.Options;
using Workers.Postgres.Cluster;
using Workers.Postgres.Corpora;
using Workers.Postgres.Migrations;

namespace Workers.Cli.Hosting;

/// <summary>Runs a command body with a context, turning the errors a person can act on into one
/// clear line on stderr and an exit code; anything else is a bug and keeps its stack trace.</summary>
public static class CommandRunner
{
    public static async Task<int> RunAsync(Func<CliContext, CancellationToken, Task<int>> body, CancellationToken ct)
    {
        try
        {
            await using var ctx = new CliContext();
            return await body(ctx, ct);
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
        catch (Exception e) when (e is LocalClusterException or MigrationException or OptionsValidationException or Workers.Onnx.OnnxRuntimeException)
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

    /// <summary>Npgsql's message, with each host's own error where it wraps several (a multi-host connection string).</summary>
    private static string Describe(NpgsqlException e) => e.InnerException is AggregateException all
        ? e.Message.TrimEnd('.') + ": " + string.Join("; ", all.InnerExceptions.Select(x => x.Message.TrimEnd('.')))
        : e.Message.TrimEnd('.');
}
