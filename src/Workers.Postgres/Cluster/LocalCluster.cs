using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Workers.Postgres.Sql;

namespace Workers.Postgres.Cluster;

/// <summary>
/// The embedded default: a private PostgreSQL cluster made from the machine's own PostgreSQL
/// binaries, used when no connection string is configured. It has its own data directory and
/// socket folder under <see cref="Root"/>, listens on a free loopback port only, and requires a
/// generated password (kept in a 0600 file) even on loopback. When we are root, initdb and
/// pg_ctl run as the <c>postgres</c> user, since PostgreSQL refuses to run as root.
/// </summary>
public sealed class LocalCluster
{
    public const string DatabaseName = "workers";
    public const string UserName = "workers";

    private readonly ILogger _log;
    private readonly bool _durable;

    /// <param name="root">Folder holding data/, run/ and cluster.json.</param>
    /// <param name="durable">False turns off fsync: for throwaway test clusters only.</param>
    public LocalCluster(string root, ILogger? logger = null, bool durable = true)
    {
        Root = Path.GetFullPath(root);
        _log = logger ?? NullLogger.Instance;
        _durable = durable;
    }

    public string Root { get; }
    public string DataDir => Path.Combine(Root, "data");
    public string SocketDir => Path.Combine(Root, "run");
    private string StateFile => Path.Combine(Root, "cluster.json");
    private string LogFile => Path.Combine(SocketDir, "postgresql.log");

    private static bool IsRoot => Environment.UserName == "root";

    /// <summary>Default root: <c>/var/lib/workers/postgres</c> for root (the postgres user must be able
    /// to reach it, and /root is closed to it), otherwise <c>$XDG_DATA_HOME/workers/postgres</c>.</summary>
    public static string DefaultRoot()
    {
        if (IsRoot) return "/var/lib/workers/postgres";
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        var baseDir = string.IsNullOrEmpty(xdg)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share")
            : xdg;
        return Path.Combine(baseDir, "workers", "postgres");
    }

    /// <summary>Starts the cluster (creating it on first use) or reuses the running one; returns its connection string.</summary>
    public async Task<string> StartAsync(CancellationToken ct = default)
    {
        var bin = PostgresBinaries.Find();
        Directory.CreateDirectory(Root);
        using var fileLock = await AcquireLockAsync(ct);

        var state = ReadState();
        if (state is null || !File.Exists(Path.Combine(DataDir, "PG_VERSION")))
        {
            state = new ClusterState(FreePort(), Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant());
            await InitDbAsync(bin, state, ct);
            WriteState(state);
        }

        if (!await IsRunningAsync(bin, ct))
        {
            // The stored port may have been taken while we were stopped: pick another then.
            if (!PortIsFree(state.Port))
            {
                state = state with { Port = FreePort() };
                WriteState(state);
            }
            WriteSettings(state.Port);
            await RunAsync(bin.PgCtl, ["start", "-D", DataDir, "-l", LogFile, "-w", "-t", "60", "-s"], ct, "start the local PostgreSQL cluster");
            _log.LogInformation("Started local PostgreSQL at 127.0.0.1:{Port} (data {DataDir})", state.Port, DataDir);
        }

        var cs = ConnectionString(state, DatabaseName);
        await EnsureDatabaseAsync(state, ct);
        return cs;
    }

    public async Task StopAsync(CancellationToken ct = default)
    {
        var bin = PostgresBinaries.Find();
        if (!File.Exists(Path.Combine(DataDir, "PG_VERSION"))) return;
        if (!await IsRunningAsync(bin, ct)) return;
        await RunAsync(bin.PgCtl, ["stop", "-D", DataDir, "-m", "fast", "-w", "-t", "60", "-s"], ct, "stop the local PostgreSQL cluster");
    }

    public async Task<LocalClusterStatus> StatusAsync(CancellationToken ct = default)
    {
        var state = ReadState();
        var exists = File.Exists(Path.Combine(DataDir, "PG_VERSION"));
        var running = exists && await IsRunningAsync(PostgresBinaries.Find(), ct);
        return new LocalClusterStatus(Root, DataDir, exists, running, state?.Port,
            state is null ? null : ConnectionString(state, DatabaseName, maskPassword: true));
    }

    /// <summary>
    /// Makes this cluster a streaming standby of <paramref name="primary"/> (which must be running) and starts it:
    /// <c>pg_basebackup -R</c> copies the primary and writes <c>primary_conninfo</c> with <paramref name="applicationName"/>,
    /// the name the primary's <c>synchronous_standby_names</c> refers to. The standby keeps the primary's password and
    /// listens on a port of its own. Returns its connection string (read-only until promoted). For failover
    /// drills and tests (ops/RUNBOOK.md, "Primary and standby"); a production standby is set up by the operator.
    /// </summary>
    /// <param name="port">The port to listen on (e.g. the one a dead primary had, so that connection strings stay valid); default a free one.</param>
    public async Task<string> StartStandbyAsync(LocalCluster primary, string applicationName = "workers_standby", int? port = null, CancellationToken ct = default)
    {
        var bin = PostgresBinaries.Find();
        var source = primary.ReadState() ?? throw new LocalClusterException($"{primary.Root} holds no cluster to copy: start it first.");
        Directory.CreateDirectory(Root);
        using var fileLock = await AcquireLockAsync(ct);
        if (Directory.Exists(DataDir)) Directory.Delete(DataDir, recursive: true);
        Directory.CreateDirectory(SocketDir);
        if (IsRoot) await RunAsync("chown", ["-R", "postgres:postgres", Root], ct, "give the standby's folder to the postgres user");
        var state = new ClusterState(port ?? FreePort(), source.Password);
        // The conninfo (password included) is what -R writes into the standby's postgresql.auto.conf (mode 0600).
        var conninfo = $"host=127.0.0.1 port={source.Port} user={UserName} password={source.Password} application_name={applicationName}";
        await RunAsync(Path.Combine(Path.GetDirectoryName(bin.PgCtl)!, "pg_basebackup"),
            ["-D", DataDir, "-R", "-X", "stream", "-c", "fast", "-d", conninfo], ct, "copy the primary for a standby (pg_basebackup)");
        WriteState(state);
        WriteSettings(state.Port);
        await RunAsync(bin.PgCtl, ["start", "-D", DataDir, "-l", LogFile, "-w", "-t", "60", "-s"], ct, "start the standby");
        _log.LogInformation("Started standby of {Primary} at 127.0.0.1:{Port} (data {DataDir})", primary.Root, state.Port, DataDir);
        return ConnectionString(state, DatabaseName);
    }

    /// <summary>Promotes this standby to primary (<c>pg_ctl promote</c>, waiting until it accepts writes).</summary>
    public async Task PromoteAsync(CancellationToken ct = default) =>
        await RunAsync(PostgresBinaries.Find().PgCtl, ["promote", "-D", DataDir, "-w", "-t", "60", "-s"], ct, "promote the standby");

    /// <summary>SIGKILLs the server (its postmaster; the backends follow): a crash as the machine's loss would cause it.</summary>
    public void Kill()
    {
        var pidFile = Path.Combine(DataDir, "postmaster.pid");
        if (!File.Exists(pidFile)) throw new LocalClusterException($"{DataDir} has no postmaster.pid: the server is not running.");
        var pid = int.Parse(File.ReadLines(pidFile).First(), System.Globalization.CultureInfo.InvariantCulture);
        Process.GetProcessById(pid).Kill(entireProcessTree: false);
    }

    /// <summary>The port this cluster listens on, or null before its first start.</summary>
    public int? Port => ReadState()?.Port;

    /// <summary>Stops the cluster and deletes its folder (throwaway test clusters).</summary>
    public async Task DestroyAsync()
    {
        try { await StopAsync(); }
        catch (Exception e) { _log.LogWarning(e, "Could not stop {Root} before removing it", Root); }
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    }

    private async Task InitDbAsync(PostgresBinaries bin, ClusterState state, CancellationToken ct)
    {
        if (Directory.Exists(DataDir)) Directory.Delete(DataDir, recursive: true);
        Directory.CreateDirectory(DataDir);
        Directory.CreateDirectory(SocketDir);
        var pwFile = Path.Combine(SocketDir, "initdb.pw");
        await File.WriteAllTextAsync(pwFile, state.Password + "\n", ct);
        File.SetUnixFileMode(pwFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            if (IsRoot)
            {
                // Every folder above the data directory must be traversable by postgres.
                for (var d = Path.GetDirectoryName(Root); !string.IsNullOrEmpty(d) && d != "/"; d = Path.GetDirectoryName(d))
                {
                    var mode = File.GetUnixFileMode(d);
                    if (!mode.HasFlag(UnixFileMode.OtherExecute))
                        throw new InvalidOperationException(
                            $"The local cluster's folder {Root} is inside {d}, which the postgres user cannot enter. " +
                            "Set Database:LocalRoot to a folder outside it (the default for root is /var/lib/workers/postgres).");
                }
                await RunAsync("chown", ["-R", "postgres:postgres", Root], ct, "give the cluster folder to the postgres user");
            }
            await RunAsync(bin.InitDb,
                ["-D", DataDir, "-U", UserName, "--pwfile", pwFile, "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                 "-E", "UTF8", "--locale=C", "--no-instructions"],
                ct, "create the local PostgreSQL cluster (initdb)");
        }
        finally
        {
            File.Delete(pwFile);
        }
        await File.AppendAllTextAsync(Path.Combine(DataDir, "postgresql.conf"),
            "\n# Workers: settings written at each start.\ninclude_if_exists = 'workers.conf'\n", ct);
        _log.LogInformation("Created local PostgreSQL cluster in {DataDir}", DataDir);
    }

    private void WriteSettings(int port)
    {
        var lines = new List<string>
        {
            "listen_addresses = '127.0.0.1'",
            $"port = {port}",
            $"unix_socket_directories = '{SocketDir.Replace("'", "''")}'",
            "max_connections = 300",
        };
        if (!_durable) lines.AddRange(["fsync = off", "synchronous_commit = off", "full_page_writes = off"]);
        var file = Path.Combine(DataDir, "workers.conf");
        File.WriteAllLines(file, lines);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
    }

    private static readonly RowMap<bool> DatabaseFound = new("DatabaseExists", c =>
    {
        var found = c.Column<bool>("found");
        return r => r.Get(found);
    });

    private async Task EnsureDatabaseAsync(ClusterState state, CancellationToken ct)
    {
        // Unpooled: a pooled connection may predate a restart of this very cluster.
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ConnectionString(state, "postgres")) { Pooling = false }.ConnectionString);
        await conn.OpenAsync(ct);
        await using var check = new NpgsqlCommand(SqlCatalog.Get("DatabaseExists"), conn);
        check.Parameters.AddWithValue("name", DatabaseName);
        if (!await DatabaseFound.SingleAsync(check, ct))
        {
            try
            {
                await using var create = new NpgsqlCommand(SqlCatalog.Get("DatabaseCreate"), conn); // creates DatabaseName
                await create.ExecuteNonQueryAsync(ct);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateDatabase)
            {
                // Another process created it first.
            }
        }
    }

    private async Task<bool> IsRunningAsync(PostgresBinaries bin, CancellationToken ct)
    {
        if (!File.Exists(Path.Combine(DataDir, "PG_VERSION"))) return false;
        var r = await ProcessRunner.RunAsync(Wrap(bin.PgCtl, ["status", "-D", DataDir]), ct);
        return r.ExitCode == 0;
    }

    private async Task RunAsync(string file, string[] args, CancellationToken ct, string what)
    {
        var r = await ProcessRunner.RunAsync(file == "chown" ? ("chown", args) : Wrap(file, args), ct);
        if (r.ExitCode != 0)
        {
            var logTail = File.Exists(LogFile) ? TailOf(LogFile) : "";
            throw new LocalClusterException(
                $"Could not {what}: {file} exited with {r.ExitCode}.{Environment.NewLine}{r.Output.Trim()}" +
                (logTail.Length > 0 ? $"{Environment.NewLine}Server log ({LogFile}):{Environment.NewLine}{logTail}" : ""));
        }
    }

    private static (string File, string[] Args) Wrap(string file, string[] args) =>
        IsRoot ? ("runuser", ["-u", "postgres", "--", file, .. args]) : (file, args);

    private static string TailOf(string path)
    {
        try
        {
            var lines = File.ReadAllLines(path);
            return string.Join(Environment.NewLine, lines.TakeLast(15));
        }
        catch (IOException) { return ""; }
        catch (UnauthorizedAccessException) { return ""; }
    }

    private static string ConnectionString(ClusterState s, string database, bool maskPassword = false) =>
        new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = s.Port,
            Username = UserName,
            Password = maskPassword ? "***" : s.Password,
            Database = database,
        }.ConnectionString;

    private async Task<FileStream> AcquireLockAsync(CancellationToken ct)
    {
        var path = Path.Combine(Root, ".lock");
        // FileShare.None is an exclusive flock on Unix: two CLIs starting at once take turns.
        for (var i = 0; ; i++)
        {
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (i < 600) { await Task.Delay(100, ct); }
        }
    }

    private ClusterState? ReadState()
    {
        if (!File.Exists(StateFile)) return null;
        return JsonSerializer.Deserialize<ClusterState>(File.ReadAllText(StateFile));
    }

    private void WriteState(ClusterState s)
    {
        var tmp = StateFile + ".tmp";
        File.WriteAllText(tmp, "");
        File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(tmp, JsonSerializer.Serialize(s));
        File.Move(tmp, StateFile, overwrite: true);
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static bool PortIsFree(int port)
    {
        try
        {
            using var l = new TcpListener(IPAddress.Loopback, port);
            l.Start();
            return true;
        }
        catch (SocketException) { return false; }
    }

    private sealed record ClusterState(int Port, string Password);
}

public sealed record LocalClusterStatus(string Root, string DataDir, bool Exists, bool Running, int? Port, string? ConnectionString);

public sealed class LocalClusterException(string message) : Exception(message);

/// <summary>Where initdb and pg_ctl are.</summary>
public sealed record PostgresBinaries(string InitDb, string PgCtl)
{
    /// <summary><c>WORKERS_PG_BIN</c>, else the newest <c>/usr/lib/postgresql/N/bin</c>, else PATH.</summary>
    public static PostgresBinaries Find()
    {
        var candidates = new List<string>();
        var env = Environment.GetEnvironmentVariable("WORKERS_PG_BIN");
        if (!string.IsNullOrEmpty(env)) candidates.Add(env);
        if (Directory.Exists("/usr/lib/postgresql"))
            candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql")
                .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0)
                .Select(d => Path.Combine(d, "bin")));
        candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries));
        foreach (var dir in candidates)
        {
            var initdb = Path.Combine(dir, "initdb");
            var pgctl = Path.Combine(dir, "pg_ctl");
            if (File.Exists(initdb) && File.Exists(pgctl) && File.Exists(Path.Combine(dir, "postgres")))
                return new PostgresBinaries(initdb, pgctl);
        }
        throw new LocalClusterException(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. Install the Debian package " +
            "'postgresql' (apt-get install -y postgresql), set WORKERS_PG_BIN to their folder, or configure " +
            "ConnectionStrings:Workers to use an existing server.");
    }
}

internal static class ProcessRunner
{
    public sealed record Result(int ExitCode, string Output);

    public static async Task<Result> RunAsync((string File, string[] Args) cmd, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(cmd.File)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in cmd.Args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new LocalClusterException($"Could not start {cmd.File}.");
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        return new Result(p.ExitCode, (await stdout) + (await stderr));
    }
}
