namespace Workers.Audio;

/// <summary>
/// The reason recorded for a file this process is not allowed to read (mode 000, another owner, a
/// folder on its path closed to us). .NET's own message ("Access to the path ... is denied") does
/// not say which user was refused or what to do; this one does, the same at enqueue and in workers.
/// </summary>
public static class FileAccessErrors
{
    public static string PermissionDenied =>
        $"permission denied: user '{Environment.UserName}' may not read this file; make it readable to that user (chmod/chown) or run workers as a user that can read it";

    /// <summary><see cref="PermissionDenied"/> for <see cref="UnauthorizedAccessException"/>, else the exception's message.</summary>
    public static string Describe(Exception e) => e is UnauthorizedAccessException ? PermissionDenied : e.Message;
}
