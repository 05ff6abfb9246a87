using System.Runtime.InteropServices;

namespace Workers.Cli.Hosting;

/// <summary>
/// SIGINT/SIGTERM handling for every command: the first signal cancels the command's token (a
/// worker stops claiming and drains; a supervisor forwards SIGTERM to its workers); a second
/// signal stops at once: <see cref="Immediate"/> callbacks run (a supervisor kills its workers),
/// then the process exits 130. Leases of shards cut off this way expire and are rescued.
/// </summary>
public static class Shutdown
{
    private static readonly CancellationTokenSource Cts = new();
    private static readonly List<Action> ImmediateActions = [];
    private static int _signals;
    private static PosixSignalRegistration[]? _registrations;

    public static CancellationToken Token => Cts.Token;

    /// <summary>Runs on a second signal, before the process exits.</summary>
    public static void Immediate(Action action)
    {
        lock (ImmediateActions) ImmediateActions.Add(action);
    }

    public static void Install()
    {
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle), PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle)];
    }

    private static void Handle(PosixSignalContext context)
    {
        context.Cancel = true; // we decide when to exit
        if (Interlocked.Increment(ref _signals) == 1)
        {
            Console.Error.WriteLine($"{context.Signal}: stopping (finishing or giving back running shards); send it again to stop at once");
            Cts.Cancel();
            return;
        }
        Console.Error.WriteLine($"{context.Signal} again: stopping at once");
        Action[] actions;
        lock (ImmediateActions) actions = [.. ImmediateActions];
        foreach (var a in actions)
        {
            try { a(); }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { }
        }
        Environment.Exit(130);
    }
}
