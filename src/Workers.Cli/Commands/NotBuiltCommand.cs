using System.CommandLine;
using Workers.Cli.Hosting;

namespace Workers.Cli.Commands;

/// <summary>A command of the design that is not built yet: it says so and exits non-zero,
/// so a script that depends on it fails loudly instead of doing nothing.</summary>
public static class NotBuiltCommand
{
    public static Command Create(string name, string description, string issue)
    {
        var cmd = new Command(name, description + " (not built yet)");
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction(_ =>
        {
            Console.Error.WriteLine($"error: `workers {name}` is not built yet ({issue}). Nothing was done.");
            return ExitCodes.NotBuilt;
        });
        return cmd;
    }
}
