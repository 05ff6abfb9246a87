namespace Workers.Fleet.Gpus;

/// <summary>One GPU as nvidia-smi reports it.</summary>
/// <param name="Index">nvidia-smi's index (PCI bus order); the value given to <c>CUDA_VISIBLE_DEVICES</c>.</param>
/// <param name="Uuid">Stable identity across reboots and re-cabling, e.g. <c>GPU-5b3c...</c>.</param>
/// <param name="Name">Product name, e.g. <c>NVIDIA H100 80GB HBM3</c>.</param>
/// <param name="MemoryMiB">Total memory, or null where nvidia-smi says <c>[N/A]</c>.</param>
public sealed record GpuInfo(int Index, string Uuid, string Name, long? MemoryMiB)
{
    public override string ToString() =>
        $"{Index}: {Name} ({Uuid}{(MemoryMiB is { } m ? $", {m} MiB" : "")})";
}
