namespace Workers.Export;

/// <summary>
/// A file written under a temporary name beside its destination and renamed over it by
/// <see cref="Commit"/>, so nobody ever reads a half-written export, and an export that fails
/// or is cancelled leaves the destination as it was. Disposing without committing removes
/// the temporary file.
/// </summary>
public sealed class AtomicOutputFile : IDisposable
{
    private enum State { Writing, Committed, Disposed }

    private readonly FileStream _stream;
    private State _state;

    public AtomicOutputFile(string path, int bufferSize = 1 << 20)
    {
        Path = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(Path)) throw new ArgumentException($"--output '{path}' is a folder; name a file.");
        var dir = System.IO.Path.GetDirectoryName(Path)!;
        if (!Directory.Exists(dir)) throw new ArgumentException($"--output '{path}': the folder '{dir}' does not exist.");
        // Same folder, so the final rename is atomic (one file system); hidden, so globs skip it.
        TempPath = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(Path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            _stream = new FileStream(TempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ExportOutputException($"cannot create the export file in '{dir}': {e.Message}", e);
        }
    }

    /// <summary>The destination, absolute.</summary>
    public string Path { get; }

    /// <summary>Where the data goes until <see cref="Commit"/>.</summary>
    public string TempPath { get; }

    public Stream Stream => _state == State.Writing ? _stream : throw new InvalidOperationException("The output file is already committed or disposed.");

    /// <summary>Flushes the data to disk and renames the temporary file over <see cref="Path"/>.</summary>
    public void Commit()
    {
        if (_state != State.Writing) throw new InvalidOperationException("The output file is already committed or disposed.");
        try
        {
            _stream.Flush(flushToDisk: true);
            _stream.Dispose();
            File.Move(TempPath, Path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ExportOutputException($"cannot write the export to '{Path}': {e.Message}", e);
        }
        _state = State.Committed;
    }

    public void Dispose()
    {
        if (_state == State.Disposed) return;
        var committed = _state == State.Committed;
        _state = State.Disposed;
        if (committed) return;
        try
        {
            _stream.Dispose();
        }
        catch (IOException)
        {
            // The buffered tail could not be written (disk full): it is being thrown away anyway.
        }
        File.Delete(TempPath);
    }
}
