namespace Workers.Cli.Hosting;

public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>Something failed while running (database, I/O).</summary>
    public const int Failure = 1;
    /// <summary>The input is wrong: bad path, bad manifest, name taken, a database ahead of this program. Nothing was written.</summary>
    public const int BadInput = 2;
}
