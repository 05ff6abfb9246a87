using System.Globalization;

namespace Workers.Fleet.Gpus;

public enum GpuSelectionMode
{
    /// <summary>Every GPU nvidia-smi reports; none when it is missing or fails.</summary>
    Auto,
    /// <summary>CPU only; nvidia-smi is not asked.</summary>
    None,
    /// <summary>Exactly the listed indices, each of which must exist.</summary>
    List,
}

/// <summary>The <c>--gpus auto|none|0,2</c> choice of <c>workers run</c>.</summary>
public sealed record GpuSelection(GpuSelectionMode Mode, IReadOnlyList<int> Indices)
{
    public static readonly GpuSelection Auto = new(GpuSelectionMode.Auto, []);
    public static readonly GpuSelection None = new(GpuSelectionMode.None, []);

    /// <exception cref="ArgumentException">Not auto, none, or a list of distinct non-negative indices.</exception>
    public static GpuSelection Parse(string? value)
    {
        var v = value?.Trim() ?? "";
        if (v.Equals("auto", StringComparison.OrdinalIgnoreCase)) return Auto;
        if (v.Equals("none", StringComparison.OrdinalIgnoreCase)) return None;
        var indices = new List<int>();
        foreach (var part in v.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var i))
                throw new ArgumentException($"--gpus '{value}': expected auto, none, or comma-separated GPU indices as nvidia-smi numbers them, e.g. 0,2.");
            if (indices.Contains(i))
                throw new ArgumentException($"--gpus '{value}': GPU {i} is listed twice. Use --per-gpu N for several workers on one GPU.");
            indices.Add(i);
        }
        return new GpuSelection(GpuSelectionMode.List, indices);
    }

    /// <summary>The GPUs to run on, given what nvidia-smi reported.</summary>
    /// <exception cref="ArgumentException">A listed GPU is not among those found (the message lists what was found).</exception>
    public IReadOnlyList<GpuInfo> Resolve(GpuQueryResult found)
    {
        switch (Mode)
        {
            case GpuSelectionMode.None: return [];
            case GpuSelectionMode.Auto: return found.Gpus;
        }
        var list = string.Join(",", Indices);
        if (found.Problem is not null)
            throw new ArgumentException($"--gpus {list}: no GPUs found: {found.Problem}. Set Fleet:NvidiaSmi to nvidia-smi's path, or run with --gpus none.");
        var missing = Indices.Where(i => found.Gpus.All(g => g.Index != i)).ToList();
        if (missing.Count > 0)
            throw new ArgumentException($"--gpus {list}: {(missing.Count == 1 ? "GPU" : "GPUs")} {string.Join(", ", missing)} not found. "
                + (found.Gpus.Count == 0 ? "nvidia-smi reports no GPUs." : "nvidia-smi reports: " + string.Join("; ", found.Gpus) + "."));
        return Indices.Select(i => found.Gpus.First(g => g.Index == i)).ToList();
    }

    public override string ToString() => Mode switch
    {
        GpuSelectionMode.Auto => "auto",
        GpuSelectionMode.None => "none",
        _ => string.Join(",", Indices),
    };
}
