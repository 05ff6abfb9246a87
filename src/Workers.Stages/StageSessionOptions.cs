using Microsoft.ML.OnnxRuntime;
using Workers.Onnx;

namespace Workers.Stages;

/// <summary>
/// A model stage's ONNX Runtime session options (the official API's): the worker's intra-op threads,
/// one inter-op thread, sequential execution, and CUDA when asked for. A CUDA provider that cannot be
/// enabled is raised as <see cref="ExecutionProviderUnavailableException"/>, so the caller decides by
/// type (auto: fall back to CPU; cuda: refuse to start) without reading ORT's text. With CUDA graphs
/// (<see cref="OnnxSessionOptions.EnableCudaGraph"/>) the provider captures and replays them; give the
/// stage the same choice (<see cref="StageDevice"/>) so that its batches get fixed shapes.
/// </summary>
public static class StageSessionOptions
{
    /// <summary>Session options for <paramref name="provider"/>; the caller owns (disposes) them.</summary>
    /// <exception cref="ExecutionProviderUnavailableException">CUDA was asked for (cuda or auto) and this build or node cannot enable it.</exception>
    public static SessionOptions Create(OnnxExecutionProvider provider, int deviceId, int threads) => Create(provider, deviceId, threads, cudaGraphs: false);

    /// <summary>Session options for <paramref name="provider"/>, with the CUDA provider's <c>enable_cuda_graph</c> set
    /// to <paramref name="cudaGraphs"/>; the caller owns (disposes) them.</summary>
    /// <exception cref="ExecutionProviderUnavailableException">CUDA was asked for (cuda or auto) and this build or node cannot enable it.</exception>
    public static SessionOptions Create(OnnxExecutionProvider provider, int deviceId, int threads, bool cudaGraphs)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        var so = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        if (provider == OnnxExecutionProvider.Cpu) return so;
        try
        {
            if (cudaGraphs)
            {
                using var cuda = new OrtCUDAProviderOptions();
                cuda.UpdateOptions(new Dictionary<string, string>
                {
                    ["device_id"] = deviceId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["enable_cuda_graph"] = "1",
                });
                so.AppendExecutionProvider_CUDA(cuda);
            }
            else so.AppendExecutionProvider_CUDA(deviceId);
            return so;
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            so.Dispose();
            var ort = OrtErrors.Translate(e, "Enabling CUDA for a model stage");
            throw new ExecutionProviderUnavailableException(OnnxSession.CudaProvider, ort.OrtMessage,
                $"A model stage could not enable CUDA (device {deviceId}): {ort.OrtMessage}. Run `workers doctor` on this node to see what is missing, " +
                "or set Inference:ExecutionProvider to auto or cpu.", ort.ErrorCode, e);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            so.Dispose();
            throw new ExecutionProviderUnavailableException(OnnxSession.CudaProvider, e.Message,
                $"A model stage could not enable CUDA (device {deviceId}): {e.Message}. Run `workers doctor` on this node to see what is missing, " +
                "or set Inference:ExecutionProvider to auto or cpu.", OrtErrorCode.Fail, e);
        }
    }
}
