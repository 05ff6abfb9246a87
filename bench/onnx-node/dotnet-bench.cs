// The C# side of the comparison: SileroBench.Run (bench/Workers.Bench) over the fetched
// library and Silero model, with the same batch sizes, thread count and timing rules as bench.js.
//
//   dotnet run bench/onnx-node/dotnet-bench.cs [-- --seconds 3 --batches 1,8,32,128 --model silero-vad-v5]
//
// Run it from anywhere inside the repository; the models must be fetched (`workers models fetch`,
// or run the Workers.Onnx tests once).
#:project ../Workers.Bench/Workers.Bench.csproj
#:property PublishAot=false
#:property Optimize=true
using System.Globalization;
using Workers.Bench;
using Workers.Onnx;

string Arg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

var repo = new DirectoryInfo(Environment.CurrentDirectory);
while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "Workers.sln"))) repo = repo.Parent;
if (repo is null)
{
    Console.Error.WriteLine("Run this from inside the Workers repository.");
    return 1;
}

var modelsRoot = Path.Combine(repo.FullName, "models");
var catalog = ModelCatalog.Load(modelsRoot);
var environment = OrtEnvironment.Load(catalog.Resolve(ModelCatalog.OnnxRuntime, modelsRoot));
var options = new SileroBenchOptions
{
    BatchSizes = Arg("--batches", "1,8,32,128").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(),
    MinSecondsPerBatchSize = double.Parse(Arg("--seconds", "3"), CultureInfo.InvariantCulture),
};
var report = SileroBench.Run(environment, catalog.Resolve(Arg("--model", ModelCatalog.SileroVadV5), modelsRoot), options);
Console.WriteLine(report.ToTable());
return 0;
