using System.CommandLine;
using Workers.Cli.Commands;

var root = new RootCommand("Workers: process very large speech corpora on GPU fleets, with PostgreSQL as the queue.")
{
    DbCommands.Create(),
    DbCommands.Migrate(),
    EnqueueCommand.Create(),
    StatusCommand.Create(),
    CorpusCommands.Rerun(),
    CorpusCommands.Cancel(),
    DemoCommand.Create(),
    ModelsCommand.Create(),
    DoctorCommand.Create(),
    RunCommand.Create(),
    WorkerCommand.Create(),
    ExportCommand.Create(),
    ServeCommand.Create(),
};
// Signals are ours (Shutdown): System.CommandLine's default would kill the process two seconds
// after Ctrl-C, in the middle of a drain.
Workers.Cli.Hosting.Shutdown.Install();
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, Workers.Cli.Hosting.Shutdown.Token);
