using System.Diagnostics;
using System.Net.Sockets;
using Workers.Audio.Tests.TestFiles;
using Workers.Testing;

namespace Workers.Audio.Tests;

/// <summary>
/// Issue 13: a corpus file that changed after enqueue costs that file, never the worker. Before the
/// fix a FIFO blocked open() forever, a character device or a hung mount read forever, and a folder
/// swapped for a symlink to elsewhere was read.
/// </summary>
public sealed class CorpusFileOpenerTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private readonly TempDirectory _dir = new();
    private readonly TempDirectory _outside = new();

    public void Dispose()
    {
        _dir.Dispose();
        _outside.Dispose();
    }

    /// <summary>Runs <paramref name="open"/> off the test thread: a regression must fail the test, not hang the run.</summary>
    private static async Task<Exception> FailsWithin(Func<object> open)
    {
        var attempt = Task.Run(() =>
        {
            try { (open() as IDisposable)?.Dispose(); return null; }
            catch (Exception e) { return e; }
        });
        return await attempt.WaitAsync(Bound) ?? throw new Xunit.Sdk.XunitException("the open succeeded");
    }

    private static void MkFifo(string path)
    {
        using var p = Process.Start("mkfifo", [path]);
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public async Task A_fifo_is_a_per_file_failure_naming_its_type_not_a_hang()
    {
        var fifo = _dir.File("replaced.wav");
        MkFifo(fifo);

        var e = Assert.IsType<CorpusFileRejectedException>(await FailsWithin(() => CorpusFileOpener.Open(fifo, null, TimeSpan.FromMinutes(1))));
        Assert.Contains("not a regular file: it is a FIFO (named pipe)", e.Message);
        // The decoder opens through it too (WAV reader and ffmpeg alike).
        Assert.IsType<CorpusFileRejectedException>(await FailsWithin(() => AudioDecoder.Open(fifo)));
    }

    [Fact]
    public async Task Devices_sockets_and_folders_are_refused_by_type()
    {
        // Siblings of the FIFO: /dev/zero reads forever, a socket cannot be opened, a folder is no audio.
        var device = _dir.File("zero.wav");
        File.CreateSymbolicLink(device, "/dev/zero");
        var socketPath = _dir.File("socket.wav");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(socketPath));
        var folder = _dir.File("folder.wav");
        Directory.CreateDirectory(folder);

        Assert.Contains("it is a character device", (await FailsWithin(() => AudioDecoder.Open(device))).Message);
        Assert.Contains("it is a socket", (await FailsWithin(() => AudioDecoder.Open(socketPath))).Message);
        Assert.Contains("it is a folder", (await FailsWithin(() => AudioDecoder.Open(folder))).Message);
    }

    [Fact]
    public void A_folder_swapped_for_a_symlink_to_outside_the_root_is_refused()
    {
        var root = _dir.Path;
        Directory.CreateDirectory(_dir.File("sub"));
        var wav = new WavBuilder().Write(_dir.File("sub/a.wav"), Signals.Sine(1600, 16000));
        using (CorpusFileOpener.Open(wav, root, Bound)) { } // as enqueued: fine

        // After enqueue: the folder is moved away and replaced by a symlink to another one.
        new WavBuilder().Write(Path.Combine(_outside.Path, "a.wav"), Signals.Sine(1600, 16000));
        Directory.Move(_dir.File("sub"), _dir.File("old-sub"));
        Directory.CreateSymbolicLink(_dir.File("sub"), _outside.Path);

        var e = Assert.Throws<CorpusFileRejectedException>(() => AudioDecoder.Open(wav, corpusRoot: root));
        Assert.Contains($"outside the corpus: the file now resolves to '{Path.Combine(_outside.Path, "a.wav")}', which is not under the corpus root '{root}'", e.Message);
    }

    [Fact]
    public void A_file_swapped_for_a_symlink_or_a_root_swapped_itself_is_refused_and_links_inside_are_fine()
    {
        var root = _dir.Path;
        var secret = new WavBuilder().Write(Path.Combine(_outside.Path, "secret.wav"), Signals.Sine(1600, 16000));
        var inside = new WavBuilder().Write(_dir.File("real.wav"), Signals.Sine(1600, 16000));
        File.CreateSymbolicLink(_dir.File("file.wav"), secret);
        File.CreateSymbolicLink(_dir.File("alias.wav"), inside);

        Assert.Throws<CorpusFileRejectedException>(() => CorpusFileOpener.Open(_dir.File("file.wav"), root, Bound).Dispose());
        using (CorpusFileOpener.Open(_dir.File("alias.wav"), root, Bound)) { }

        // The root recorded at enqueue is a real path; a root later replaced by a symlink leads elsewhere.
        var recorded = Path.Combine(_outside.Path, "corpus");
        Directory.CreateDirectory(Path.Combine(_outside.Path, "moved"));
        File.Copy(inside, Path.Combine(_outside.Path, "moved", "real.wav"));
        Directory.CreateSymbolicLink(recorded, Path.Combine(_outside.Path, "moved"));
        Assert.Throws<CorpusFileRejectedException>(() => CorpusFileOpener.Open(Path.Combine(recorded, "real.wav"), recorded, Bound).Dispose());
    }

    [Fact]
    public async Task Ffmpeg_reads_the_file_that_was_checked_even_if_its_name_is_swapped_after()
    {
        var flac = _dir.File("a.flac");
        Ffmpeg.Run("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=1", "-c:a", "flac", flac);
        var other = _dir.File("other.flac");
        Ffmpeg.Run("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3", "-c:a", "flac", other);

        using var source = AudioDecoder.Open(flac, corpusRoot: _dir.Path);
        File.Move(other, flac, overwrite: true); // before ffmpeg has read a byte, most likely

        var samples = await Task.Run(() => Signals.ReadAll(source)).WaitAsync(Bound);
        Assert.Equal(16000, samples.Length); // the 1 s tone, not the 3 s of silence
        Assert.True(samples.Max() > 0.1f);
    }

    [Fact]
    public async Task A_hung_mount_fails_the_open_or_the_read_after_the_read_timeout()
    {
        using var mount = HungMount.Start();
        var options = new AudioDecoderOptions { ReadTimeout = TimeSpan.FromSeconds(1) };

        var watch = Stopwatch.StartNew();
        var open = await FailsWithin(() => AudioDecoder.Open(mount.OpenHangs, options: options));
        Assert.IsType<TimeoutException>(open);
        Assert.Contains("opening the file did not finish within Audio:ReadTimeout (1 s)", open.Message);

        // The header is served; the audio never comes. Before the fix this Read never returned.
        using var source = AudioDecoder.Open(mount.ReadHangs, options: options);
        var read = await Task.Run(() => Record.Exception(() => source.Read(new float[4096]))).WaitAsync(Bound);
        var timeout = Assert.IsType<TimeoutException>(read);
        Assert.Contains("a read returned nothing for 1 s (Audio:ReadTimeout)", timeout.Message);
        Assert.Throws<TimeoutException>(() => source.Read(new float[16])); // stays failed
        Assert.True(watch.Elapsed < Bound, $"took {watch.Elapsed}");
    }
}
