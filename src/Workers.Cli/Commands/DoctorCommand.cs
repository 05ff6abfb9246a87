using System.CommandLine;
using Microsoft.Extensions.Options;
using Workers.Cli.Hosting;
using Workers.Onnx;

namespace Workers.Cli.Commands;

/// <summary><c>workers doctor</c>: can this node run GPU workers? Loads the CUDA provider the way a
/// worker does and prints, by name, what is present and what is missing. Exit code 0: it can; 1: it cannot.</summary>
public static class DoctorCommand
{
    public static Command Create()
    {
        var doctor = new Command("doctor",
            "Can this node run GPU workers? Checks the GPU build of ONNX Runtime, the NVIDIA driver (libcuda.so.1), the CUDA 13 runtime libraries, " +
            "cuDNN 9, nvidia-smi and the visible GPUs, then loads the model on CUDA as a worker would. Exit code 0 when it can, 1 when it cannot.");
        doctor.SetAction((_, ct) => CommandRunner.RunAsync<Handler>((h, _) => Task.FromResult(h.Run()), ct,
            services => services.AddInference(validate: false)));
        return doctor;
    }

    /// <summary>The models folder, the default pipeline's model and the Inference settings, as configured.</summary>
    public sealed class Handler(ModelFolder models, IOptions<PipelinesOptions> pipelines, IOptions<OnnxSessionOptions> inference)
    {
        public int Run()
        {
            var model = models.Catalog().Resolve(pipelines.Value.Get(PipelinesOptions.Default).Model, models.Root);
            var env = OrtEnvironment.Load();
            var report = GpuNodeDoctor.Run(env, model, inference.Value.Clone());
            foreach (var check in report.Checks) Console.WriteLine(check);
            Console.WriteLine(report.CanRunGpuWorkers
                ? "doctor: this node can run GPU workers (ExecutionProvider=cuda)."
                : "doctor: this node cannot run GPU workers; fix the MISSING lines above (ops/RUNBOOK.md, \"GPU nodes\"). Workers here would run on CPU (auto) or refuse to start (cuda).");
            return report.CanRunGpuWorkers ? ExitCodes.Ok : ExitCodes.Failure;
        }
    }
}
