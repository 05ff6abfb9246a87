namespace Workers.Fleet.Gpus;

/// <summary>One worker slot of a node: pinned to <see cref="Gpu"/>, or a CPU slot when it is null.</summary>
public sealed record NodeSlot(int Index, GpuInfo? Gpu);

/// <summary>
/// A node's worker slots: <c>perGpu</c> slots on each GPU (in the order given), then the CPU
/// slots, and the cores each worker gets: <c>max(1, cores / slots)</c> unless set, shared in the worker
/// by its decoder threads and its intra-op threads (<c>WorkerOptions.SplitCores</c>).
/// </summary>
public sealed class NodeSlotPlan
{
    private NodeSlotPlan(IReadOnlyList<NodeSlot> slots, int threads) => (Slots, Threads) = (slots, threads);

    public IReadOnlyList<NodeSlot> Slots { get; }

    /// <summary>Cores per worker (decoder threads plus intra-op threads).</summary>
    public int Threads { get; }

    public int GpuSlots => Slots.Count(s => s.Gpu is not null);

    public int CpuSlots => Slots.Count(s => s.Gpu is null);

    /// <exception cref="ArgumentException">Every problem with the counts, one line each; or nothing to run.</exception>
    public static NodeSlotPlan Create(IReadOnlyList<GpuInfo> gpus, int perGpu, int cpuWorkers, int? threads, int cores)
    {
        var problems = new List<string>();
        if (perGpu < 1) problems.Add($"--per-gpu must be at least 1 (is {perGpu}); use --gpus none for no GPU workers.");
        if (cpuWorkers < 0) problems.Add($"--cpu-workers must be 0 or more (is {cpuWorkers}).");
        if (threads < 1) problems.Add($"--threads must be at least 1 (is {threads}).");
        if (problems.Count > 0) throw new ArgumentException(string.Join(System.Environment.NewLine, problems));
        var slots = gpus.SelectMany(g => Enumerable.Repeat(g, perGpu)).Select(g => (GpuInfo?)g)
            .Concat(Enumerable.Repeat<GpuInfo?>(null, cpuWorkers))
            .Select((g, i) => new NodeSlot(i, g)).ToList();
        if (slots.Count == 0) throw new ArgumentException("Nothing to run: no GPU slots and --cpu-workers 0.");
        return new NodeSlotPlan(slots, threads ?? Math.Max(1, cores / slots.Count));
    }

    /// <summary>
    /// The environment of a slot's process. A GPU slot sees only its GPU (<c>CUDA_VISIBLE_DEVICES</c>
    /// = nvidia-smi's index, numbered in PCI bus order like nvidia-smi, so inside the process it is
    /// device 0) and asks for <paramref name="gpuProvider"/>. A CPU slot sees no GPU and uses
    /// <paramref name="cpuProvider"/>.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Environment(NodeSlot slot, string gpuProvider, string cpuProvider) =>
        slot.Gpu is { } gpu
            ? new Dictionary<string, string>
            {
                ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID", // CUDA's own default order is fastest-first, not nvidia-smi's
                ["CUDA_VISIBLE_DEVICES"] = gpu.Index.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Inference__ExecutionProvider"] = gpuProvider,
                ["Inference__DeviceId"] = "0",
            }
            : new Dictionary<string, string>
            {
                ["CUDA_VISIBLE_DEVICES"] = "",
                ["Inference__ExecutionProvider"] = cpuProvider,
            };
}
