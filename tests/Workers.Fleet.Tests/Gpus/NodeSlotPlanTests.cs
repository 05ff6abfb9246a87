using Workers.Fleet.Gpus;

namespace Workers.Fleet.Tests.Gpus;

/// <summary>A node's slots, their pins and threads (issue "Fleet", item 1).</summary>
public sealed class NodeSlotPlanTests
{
    private static readonly GpuInfo[] Gpus = [new(0, "GPU-a", "H100", 81559), new(2, "GPU-c", "H100", 81559)];

    [Fact]
    public void Per_gpu_slots_come_first_then_cpu_slots_and_threads_split_the_cores()
    {
        var plan = NodeSlotPlan.Create(Gpus, perGpu: 2, cpuWorkers: 1, threads: null, cores: 16);
        Assert.Equal([0, 0, 2, 2, null], plan.Slots.Select(s => s.Gpu?.Index));
        Assert.Equal([0, 1, 2, 3, 4], plan.Slots.Select(s => s.Index));
        Assert.Equal((4, 1, 3), (plan.GpuSlots, plan.CpuSlots, plan.Threads)); // 16 cores / 5 workers
    }

    [Fact]
    public void Threads_are_at_least_one_and_can_be_set()
    {
        Assert.Equal(1, NodeSlotPlan.Create(Gpus, 4, 0, null, cores: 2).Threads);
        Assert.Equal(6, NodeSlotPlan.Create(Gpus, 4, 0, 6, cores: 2).Threads);
    }

    [Fact]
    public void Every_bad_count_is_named_at_once()
    {
        var e = Assert.Throws<ArgumentException>(() => NodeSlotPlan.Create(Gpus, 0, -1, 0, 8));
        Assert.Equal(3, e.Message.Split('\n').Length);
        Assert.Contains("--per-gpu must be at least 1", e.Message);
        Assert.Contains("--cpu-workers must be 0 or more", e.Message);
        Assert.Contains("--threads must be at least 1", e.Message);
    }

    [Fact]
    public void No_gpus_and_no_cpu_workers_is_nothing_to_run() =>
        Assert.StartsWith("Nothing to run", Assert.Throws<ArgumentException>(() => NodeSlotPlan.Create([], 1, 0, null, 8)).Message);

    [Fact]
    public void A_gpu_slot_sees_only_its_gpu_as_device_0_and_asks_for_the_configured_provider()
    {
        var slot = NodeSlotPlan.Create(Gpus, 1, 0, null, 8).Slots[1];
        Assert.Equal(new Dictionary<string, string>
        {
            ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID",
            ["CUDA_VISIBLE_DEVICES"] = "2",
            ["Inference__ExecutionProvider"] = "auto",
            ["Inference__DeviceId"] = "0",
        }, NodeSlotPlan.Environment(slot, "auto", "cpu"));
    }

    [Fact]
    public void A_cpu_slot_sees_no_gpu_and_uses_the_cpu_provider()
    {
        var slot = NodeSlotPlan.Create(Gpus, 1, 1, null, 8).Slots[2];
        Assert.Equal(new Dictionary<string, string>
        {
            ["CUDA_VISIBLE_DEVICES"] = "",
            ["Inference__ExecutionProvider"] = "cpu",
        }, NodeSlotPlan.Environment(slot, "cuda", "cpu"));
    }
}
