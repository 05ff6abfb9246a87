using System.Runtime.InteropServices;

namespace Workers.Fleet.Supervisor;

/// <summary>POSIX signals to other processes (.NET's Process.Kill only sends SIGKILL).</summary>
public static partial class Signals
{
    public const int SigInt = 2;
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigCont = 18;
    public const int SigStop = 19;

    /// <summary>kill(2): 0 on success, -1 when there is no such process or it is not ours.</summary>
    public static int Send(int pid, int signal) => Kill(pid, signal);

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
