using System.CommandLine;
using Workers.Bench;
using Workers.Cli.Hosting;

// The benches are a tool that drives the product, not part of it: their own executable
// (workers-bench), configured and hosted like `workers` (its CliHost and CommandRunner; each bench a handler taking its services by constructor), which it starts as
// child processes where a bench needs real nodes (pipeline, soak).
var root = BenchCommand.Create();
// Signals are ours (Shutdown), as in `workers`: a soak must clean up its nodes on Ctrl-C.
Shutdown.Install();
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, Shutdown.Token);
