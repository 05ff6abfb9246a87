namespace Workers.Export;

/// <summary>
/// The export could not be written where it was asked to go (disk full, permission denied,
/// standard output closed by the reader). Unlike a source file that cannot be decoded, this
/// stops the export: every following line or file would fail the same way.
/// </summary>
public sealed class ExportOutputException(string message, Exception? inner = null) : Exception(message, inner);
