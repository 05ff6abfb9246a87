using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Workers.Audio;

/// <summary>
/// A corpus file refused at open: not a regular file (a FIFO, a device, a socket), or no longer
/// inside the corpus root recorded at enqueue. A per-file failure that fails the same way every
/// time: it is recorded against the file and never retried.
/// </summary>
public sealed class CorpusFileRejectedException(string path, string reason) : Exception($"{path}: {reason}")
{
    /// <summary>The path as asked for.</summary>
    public string Path { get; } = path;

    /// <summary>What is wrong, without the path.</summary>
    public string Reason { get; } = reason;
}

/// <summary>
/// The one way a corpus file is opened (probing at enqueue, decoding in workers, export). A file
/// that changed after enqueue must cost that file, never the worker:
/// <list type="bullet">
/// <item><c>open(2)</c> runs with <c>O_NONBLOCK</c>, so a FIFO does not wait for a writer, and on a
///   thread of the pool with a time limit, so a hung network mount fails the file after the limit
///   instead of holding the caller (a stuck kernel call cannot be cancelled: the pool thread is left
///   to it, and closes the descriptor if the call ever returns; pool threads never keep the process
///   alive).</item>
/// <item>Only regular files are read: the opened descriptor is checked with <c>statx</c> (not the
///   path, which may have changed meanwhile); a FIFO, character or block device, socket or folder is
///   a <see cref="CorpusFileRejectedException"/> naming the type.</item>
/// <item>Every read of the returned <see cref="CorpusFileStream"/> is bounded by the same time limit.</item>
/// <item>With a root, the opened file's real path (read back from <c>/proc/self/fd</c>, so every
///   symlink on the way is resolved as the kernel resolved it) must lie under that root, the corpus
///   root recorded at enqueue: a folder swapped for a symlink to elsewhere is refused.</item>
/// </list>
/// </summary>
public static partial class CorpusFileOpener
{
    private const int O_RDONLY = 0;
    private const int O_NOCTTY = 0x100;
    private const int O_NONBLOCK = 0x800;
    private const int O_CLOEXEC = 0x80000;
    private const int AT_FDCWD = -100;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_TYPE = 0x1;
    private const int S_IFMT = 0xF000;
    private const int EINTR = 4;
    private const int ENOENT = 2;
    private const int EACCES = 13;
    private const int EPERM = 1;
    private const int ENOTDIR = 20;
    private const int ENXIO = 6;
    private const int ELOOP = 40;

    /// <summary>The shortest time limit applied to an open or a read, whatever is asked for.</summary>
    public static readonly TimeSpan MinTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Opens <paramref name="path"/> for reading as described on the class.
    /// </summary>
    /// <param name="confinedTo">The corpus root recorded at enqueue (its real path), or null for no confinement.</param>
    /// <param name="timeout">How long the open, and then each read of the stream, may take without result
    /// (Audio:ReadTimeout), at least <see cref="MinTimeout"/>; <see cref="Timeout.InfiniteTimeSpan"/> waits as long as the kernel does.</param>
    /// <returns>An unbuffered stream whose reads are bounded by <paramref name="timeout"/>.</returns>
    /// <remarks>With a time limit, the open and each read run on a pool thread while the caller waits. Callers that
    /// open many files at once call this from threads of their own (the item decoder's, <see cref="AudioProber.ProbeManyAsync"/>'s):
    /// pool threads waiting here starve the pool of the threads their own opens need, until it grows.</remarks>
    /// <exception cref="CorpusFileRejectedException">Not a regular file, or outside <paramref name="confinedTo"/>.</exception>
    /// <exception cref="TimeoutException">The open did not return within <paramref name="timeout"/>.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist (<see cref="DirectoryNotFoundException"/> for a missing folder).</exception>
    /// <exception cref="UnauthorizedAccessException">This user may not read it.</exception>
    /// <exception cref="IOException">Any other failure of the open, as the kernel reports it.</exception>
    public static CorpusFileStream Open(string path, string? confinedTo, TimeSpan timeout)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        // Never tighter than MinTimeout: on a loaded machine the hop to a pool thread alone can take milliseconds.
        if (timeout != Timeout.InfiniteTimeSpan && timeout < MinTimeout) timeout = MinTimeout;
        var full = System.IO.Path.GetFullPath(path);
        SafeFileHandle handle;
        if (timeout == Timeout.InfiniteTimeSpan)
            handle = OpenChecked(full, path);
        else
        {
            var opening = Task.Run(() => OpenChecked(full, path));
            bool done;
            try { done = MonotonicWait.Wait(opening, timeout); }
            catch (AggregateException e) when (e.InnerExceptions.Count == 1)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException!).Throw();
                throw;
            }
            if (!done)
            {
                // Whenever the stuck open returns, nobody is there to use the descriptor: close it.
                opening.ContinueWith(static t => { if (t.IsCompletedSuccessfully) t.Result.Dispose(); }, TaskScheduler.Default);
                throw new TimeoutException(
                    $"{path}: opening the file did not finish within Audio:ReadTimeout ({timeout.TotalSeconds:0.###} s); " +
                    "is its storage (a network mount) hung? The file is recorded as failed; the worker went on.");
            }
            handle = opening.Result;
        }

        try
        {
            if (confinedTo is not null) CheckConfined(handle, path, confinedTo);
            return new CorpusFileStream(handle, path, timeout);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The path the kernel has open behind <paramref name="handle"/>, every symlink resolved.</summary>
    public static string RealPath(SafeFileHandle handle)
    {
        var link = $"/proc/self/fd/{handle.DangerousGetHandle()}";
        return new FileInfo(link).LinkTarget ?? throw new IOException($"cannot read {link}");
    }

    /// <summary>
    /// The path another process (ffmpeg) can open to read the very file behind
    /// <paramref name="handle"/>, even if its name has been swapped since: this process's
    /// descriptor link.
    /// </summary>
    public static string DescriptorPath(SafeFileHandle handle) =>
        $"/proc/{Environment.ProcessId}/fd/{handle.DangerousGetHandle()}";

    private static void CheckConfined(SafeFileHandle handle, string path, string root)
    {
        var real = RealPath(handle);
        var trimmedRoot = System.IO.Path.TrimEndingDirectorySeparator(root);
        if (!(real == trimmedRoot || real.StartsWith(trimmedRoot == "/" ? "/" : trimmedRoot + "/", StringComparison.Ordinal)))
            throw new CorpusFileRejectedException(path,
                $"outside the corpus: the file now resolves to '{real}', which is not under the corpus root '{trimmedRoot}' recorded at enqueue " +
                "(a folder or file was replaced by a symlink after enqueue?); it is not read. Move the audio back under the root, or enqueue its real location as a corpus of its own.");
    }

    private static SafeFileHandle OpenChecked(string full, string path)
    {
        int fd;
        do fd = open(full, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            // A socket cannot be opened at all (ENXIO); name what it is, as for a FIFO or a device.
            if (errno == ENXIO && TypeOf(AT_FDCWD, full, 0) is int mode && Describe(mode) is { } type)
                throw new CorpusFileRejectedException(path, NotRegular(type));
            throw errno switch
            {
                ENOENT => new FileNotFoundException($"Could not find file '{full}'.", full),
                ENOTDIR => new DirectoryNotFoundException($"Could not find a part of the path '{full}'."),
                EACCES or EPERM => new UnauthorizedAccessException($"Access to the path '{full}' is denied."),
                ELOOP => new IOException($"'{full}': too many levels of symbolic links"),
                _ => new IOException($"'{full}': {Marshal.GetPInvokeErrorMessage(errno)}", errno),
            };
        }
        var handle = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
        try
        {
            int mode = TypeOf(fd, "", AT_EMPTY_PATH) ?? throw new IOException($"'{full}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            if (Describe(mode) is { } type)
                throw new CorpusFileRejectedException(path, NotRegular(type));
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static string NotRegular(string type) =>
        $"not a regular file: it is {type}; only regular audio files are read (was the file replaced after enqueue?)";

    /// <summary>What a non-regular file type is, in words; null for a regular file.</summary>
    private static string? Describe(int mode) => (mode & S_IFMT) switch
    {
        0x8000 => null,
        0x1000 => "a FIFO (named pipe)",
        0x2000 => "a character device",
        0x6000 => "a block device",
        0xC000 => "a socket",
        0x4000 => "a folder",
        0xA000 => "a symlink",
        _ => $"a file of unknown type (mode {mode:x})",
    };

    /// <summary>The st_mode of a path or, with AT_EMPTY_PATH, of a descriptor; null on error (errno kept).</summary>
    private static unsafe int? TypeOf(int dirfd, string path, int flags)
    {
        // struct statx is the same on every Linux architecture, unlike struct stat: stx_mode is the u16 at offset 28.
        byte* buffer = stackalloc byte[256];
        int rc;
        do rc = statx(dirfd, path, flags, STATX_TYPE, buffer);
        while (rc < 0 && Marshal.GetLastPInvokeError() == EINTR);
        return rc < 0 ? null : *(ushort*)(buffer + 28);
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string pathname, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string pathname, int flags, uint mask, byte* statxbuf);
}
