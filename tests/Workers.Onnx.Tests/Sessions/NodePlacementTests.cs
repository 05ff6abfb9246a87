namespace Workers.Onnx.Tests.Sessions;

/// <summary>Issue 16: <c>cuda</c> is strict about where the compute nodes landed, read from ORT's verbose
/// placement report. The CPU-only report is ORT's real output (OnnxSessionTests); the two-provider one
/// is written here in the format the 1.32.0 library prints (its strings: " Node(s) placed on [",
/// "]. Number of nodes: "), since no CUDA device exists on these machines.</summary>
public sealed class NodePlacementTests
{
    [Fact]
    public void OneProvider_ReportIsCounted()
    {
        var placement = new NodePlacement();
        placement.Add("Node placements");
        placement.Add(" All nodes placed on [CPUExecutionProvider]. Number of nodes: 212");

        Assert.True(placement.IsKnown);
        Assert.Equal(212, placement.NodesPerProvider[OnnxSession.CpuProvider]);
        Assert.Equal("no node was placed on CUDAExecutionProvider (CPUExecutionProvider: 212)", OnnxSession.CheckPlacement(placement));
    }

    [Fact]
    public void ShapeOpsKeptOnCpu_ByOrtsOwnChoice_AreAccepted()
    {
        var placement = new NodePlacement();
        placement.Add(" Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 3\n  Conv (/stft/conv)\n  LSTM (/decoder/rnn)\n  Sigmoid (/out)");
        placement.Add(" Node(s) placed on [CPUExecutionProvider]. Number of nodes: 3\n  Shape (/Shape), Gather (/Gather_1), Concat (/Concat)");

        Assert.Equal(3, placement.NodesPerProvider[OnnxSession.CudaProvider]);
        Assert.Equal(3, placement.NodesPerProvider[OnnxSession.CpuProvider]);
        Assert.Equal(["Shape", "Gather", "Concat"], placement.NodesOn(OnnxSession.CpuProvider).Select(n => n.OpType));
        Assert.Null(OnnxSession.CheckPlacement(placement));
    }

    [Fact]
    public void ComputeNodesOnCpu_AreRefused_ByName()
    {
        var placement = new NodePlacement();
        placement.Add(" Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 1");
        placement.Add("  Sigmoid (/out)");
        placement.Add(" Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2");
        placement.Add("  Conv (/stft/conv)");
        placement.Add("  Shape (/Shape)");

        var refusal = OnnxSession.CheckPlacement(placement);

        Assert.Equal("1 compute node(s) were placed on CPUExecutionProvider: Conv (/stft/conv)", refusal);
    }

    [Fact]
    public void NoReport_IsRefused_RatherThanAssumed()
    {
        Assert.Contains("no node placement report", OnnxSession.CheckPlacement(new NodePlacement()));
    }
}
