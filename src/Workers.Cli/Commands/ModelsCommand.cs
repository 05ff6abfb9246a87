using System.CommandLine;
using Workers.Cli.Hosting;
using Workers.Onnx;

namespace Workers.Cli.Commands;

public static class ModelsCommand
{
    public static Command Create()
    {
        var models = new Command("models", "The models pinned in models.json (ONNX Runtime itself comes with the build, from its NuGet package).");
        var fetch = new Command("fetch", "Fetch (with npm) and verify every file in models.json into Models:Root; a no-op when all are present.");
        fetch.SetAction((_, ct) => CommandRunner.RunAsync<ModelFolder>(async (models, ct) =>
        {
            var catalog = models.Catalog();
            await ModelFetcher.FetchAllAsync(catalog, models.Root, line => Console.Error.WriteLine("models: " + line), ct);
            catalog.Verify(models.Root);
            Console.WriteLine($"models: all {catalog.Models.Count} files present and verified in {models.Root}");
            return ExitCodes.Ok;
        }, ct));
        var verify = new Command("verify", "Check every file in models.json is present with its sha256.");
        verify.SetAction((_, ct) => CommandRunner.RunAsync<ModelFolder>((models, _) =>
        {
            models.Catalog().Verify(models.Root);
            Console.WriteLine("models: verified");
            return Task.FromResult(ExitCodes.Ok);
        }, ct));
        models.Subcommands.Add(fetch);
        models.Subcommands.Add(verify);
        return models;
    }
}
