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
        fetch.SetAction((_, ct) => CommandRunner.RunAsync(async (ctx, ct) =>
        {
            var root = Inference.ModelsRoot(ctx);
            var catalog = Inference.Catalog(ctx);
            await ModelFetcher.FetchAllAsync(catalog, root, line => Console.Error.WriteLine("models: " + line), ct);
            catalog.Verify(root);
            Console.WriteLine($"models: all {catalog.Models.Count} files present and verified in {root}");
            return ExitCodes.Ok;
        }, ct));
        var verify = new Command("verify", "Check every file in models.json is present with its sha256.");
        verify.SetAction((_, ct) => CommandRunner.RunAsync((ctx, ct) =>
        {
            Inference.Catalog(ctx).Verify(Inference.ModelsRoot(ctx));
            Console.WriteLine("models: verified");
            return Task.FromResult(ExitCodes.Ok);
        }, ct));
        models.Subcommands.Add(fetch);
        models.Subcommands.Add(verify);
        return models;
    }
}
