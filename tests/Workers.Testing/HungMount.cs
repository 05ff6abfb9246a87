using System.Diagnostics;

namespace Workers.Testing;

/// <summary>
/// A real hung file system for tests (issue 13): a FUSE mount (Debian's fuse3 and python3-fusepy,
/// installed by ops/setup.sh) whose server answers some calls and never others, so the kernel's
/// open or read blocks the way it does on a dead network mount. Files:
/// <list type="bullet">
/// <item><c>open-hangs.wav</c>: <c>open(2)</c> never returns.</item>
/// <item><c>read-hangs.wav</c>: a 16 kHz mono 16-bit WAV header of <see cref="DataSeconds"/> s is read
///   normally (direct I/O, so the kernel asks exactly for what the reader asks); any read of the
///   audio after it never returns.</item>
/// <item><c>header-hangs.flac</c>: its first 12 bytes (the FLAC magic and the start of STREAMINFO, what
///   sniffing a format reads) are read normally; any read past them never returns.</item>
/// </list>
/// Dispose ends the server; the kernel then fails the stuck calls (ENOTCONN) and they return.
/// </summary>
public sealed class HungMount : IDisposable
{
    public const int DataSeconds = 60;

    private const string Server = """
        import errno, stat, struct, sys, threading, time
        from fusepy import FUSE, Operations, FuseOSError
        RATE, SECONDS = 16000, int(sys.argv[2])
        DATA = RATE * 2 * SECONDS
        HEADER = b'RIFF' + struct.pack('<I', 36 + DATA) + b'WAVEfmt ' + struct.pack('<IHHIIHH', 16, 1, 1, RATE, RATE * 2, 2, 16) + b'data' + struct.pack('<I', DATA)
        FLAC = b'fLaC' + bytes([0x80, 0, 0, 34]) + bytes([0x10, 0, 0x10, 0])
        FILES = {'/open-hangs.wav': len(HEADER) + DATA, '/read-hangs.wav': len(HEADER) + DATA, '/header-hangs.flac': 1 << 20}
        forever = threading.Event()
        class Hung(Operations):
            def getattr(self, path, fh=None):
                if path == '/':
                    return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
                if path in FILES:
                    return dict(st_mode=stat.S_IFREG | 0o644, st_nlink=1, st_size=FILES[path])
                raise FuseOSError(errno.ENOENT)
            def readdir(self, path, fh):
                return ['.', '..'] + [p[1:] for p in FILES]
            def open(self, path, flags):
                if path == '/open-hangs.wav':
                    forever.wait()
                return 0
            def read(self, path, size, offset, fh):
                if path == '/header-hangs.flac':
                    if offset + size <= len(FLAC):
                        return FLAC[offset:offset + size]
                    forever.wait()
                if offset + size <= len(HEADER):
                    return HEADER[offset:offset + size]
                forever.wait()
                raise FuseOSError(errno.EIO)
        print('serving', flush=True)
        FUSE(Hung(), sys.argv[1], foreground=True, nothreads=False, allow_other=True, direct_io=True)
        """;

    private readonly string _dir;
    private readonly Process _server;

    private HungMount(string dir, Process server, string mountPoint)
    {
        _dir = dir;
        _server = server;
        MountPoint = mountPoint;
    }

    public string MountPoint { get; }

    public string OpenHangs => Path.Combine(MountPoint, "open-hangs.wav");

    public string ReadHangs => Path.Combine(MountPoint, "read-hangs.wav");

    public string HeaderHangs => Path.Combine(MountPoint, "header-hangs.flac");

    /// <summary>Mounts it; fails with what to install when FUSE is not available.</summary>
    public static HungMount Start()
    {
        var dir = Directory.CreateTempSubdirectory("workers-hung-").FullName;
        var mountPoint = Path.Combine(dir, "mnt");
        Directory.CreateDirectory(mountPoint);
        var script = Path.Combine(dir, "hung.py");
        File.WriteAllText(script, Server);
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { script, mountPoint, DataSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) }) start.ArgumentList.Add(a);
        var server = Process.Start(start)!;
        var mount = new HungMount(dir, server, mountPoint);
        // Mounted once the kernel lists it; the server's own failure (no /dev/fuse, no fusepy) ends it.
        var deadline = Stopwatch.StartNew();
        while (!File.ReadAllText("/proc/mounts").Contains(" " + mountPoint + " ", StringComparison.Ordinal))
        {
            if (server.WaitForExit(50) || deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                var error = server.HasExited ? server.StandardError.ReadToEnd() : "not mounted after 30 s";
                mount.Dispose();
                throw new InvalidOperationException(
                    $"The hung-mount test file system could not be mounted: {error.Trim()} " +
                    "It needs /dev/fuse, root (or fuse group) and the Debian packages fuse3 and python3-fusepy (ops/setup.sh installs them).");
            }
        }
        return mount;
    }

    public void Dispose()
    {
        try { if (!_server.HasExited) { _server.Kill(); _server.WaitForExit(5000); } } catch (InvalidOperationException) { }
        // Lazy: calls still stuck in it are failed by the kernel and the mount point goes away.
        using (var umount = Process.Start(new ProcessStartInfo("umount", ["-l", MountPoint]) { RedirectStandardError = true })) umount?.WaitForExit(5000);
        _server.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
