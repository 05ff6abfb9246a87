using System.Text.RegularExpressions;
using Workers.Dashboard.Security;

namespace Workers.Dashboard;

/// <summary>
/// Options of section <c>Dashboard</c>. With no <see cref="Users"/>, the dashboard answers requests
/// from this machine (loopback) only, as Hangfire's dashboard does; every other request gets 403.
/// </summary>
public sealed partial class DashboardOptions
{
    public const string Section = "Dashboard";

    /// <summary>People allowed in from other machines, with HTTP Basic authentication.</summary>
    /// <value>The default value is empty: loopback only.</value>
    public List<DashboardUser> Users { get; set; } = [];

    /// <summary>
    /// Whether loopback requests must authenticate too. Set it when a reverse proxy on the same
    /// machine forwards remote traffic (every request would then look local).
    /// </summary>
    /// <value>The default value is false.</value>
    public bool LocalRequiresCredentials { get; set; }

    /// <summary>
    /// The PostgreSQL schema of Hangfire's tables (jobs, states, servers) in our database. Hangfire.PostgreSql
    /// creates it, and upgrades it after a package update, when <c>workers serve</c> starts.
    /// </summary>
    /// <value>The default value is <c>hangfire</c>.</value>
    public string HangfireSchema { get; set; } = "hangfire";

    /// <summary>
    /// Hangfire workers in this process, taking jobs from queue <c>control</c> (enqueue from the
    /// dashboard). 0 runs no Hangfire server here: jobs wait until a process that runs one starts.
    /// </summary>
    /// <value>The default value is 2.</value>
    public int JobWorkers { get; set; } = 2;

    /// <summary>
    /// The folder exports started from the dashboard's Export page are written under: each export
    /// job writes to its own folder <c>job-ID</c> in it (segments.jsonl, and audio/ with segment
    /// audio), named by the job; nobody types a path. An absolute path of an existing folder.
    /// </summary>
    /// <value>The default value is empty: exporting from the dashboard is off.</value>
    public string ExportRoot { get; set; } = "";

    /// <summary>
    /// Host names (or IP addresses) browsers may use to reach the dashboard from other machines,
    /// e.g. <c>workers.example.org</c>; no scheme, port or path. Loopback names (<c>localhost</c>,
    /// <c>127.0.0.1</c>, <c>[::1]</c>) are always allowed. A request naming any other host is refused
    /// (400) before anything else happens: a web page whose own name re-binds to 127.0.0.1 (DNS
    /// rebinding) would otherwise be same-origin with the dashboard.
    /// </summary>
    /// <value>The default value is empty: loopback names only.</value>
    public List<string> AllowedHosts { get; set; } = [];

    /// <summary>Sign-in attempts with a wrong password allowed per client address and per user name
    /// before further attempts are answered 429 with Retry-After, without checking the password.
    /// Loopback requests are never throttled, so an administrator on this machine cannot be locked out.</summary>
    /// <value>The default value is 5.</value>
    public int LoginFailuresAllowed { get; set; } = 5;

    /// <summary>How long failed sign-ins count against a client or user name, from the first of them.</summary>
    /// <value>The default value is 60.</value>
    public int LoginThrottleSeconds { get; set; } = 60;

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (!ValidSchema().IsMatch(HangfireSchema))
            problems.Add($"Dashboard:HangfireSchema '{HangfireSchema}' is not a plain lower-case PostgreSQL name (letters, digits, '_', at most 63, starting with a letter or '_').");
        if (JobWorkers is < 0 or > 64)
            problems.Add($"Dashboard:JobWorkers is {JobWorkers}; use 0 (no Hangfire server in this process) to 64.");
        if (ExportRoot is { Length: > 0 } export && (!Path.IsPathFullyQualified(export) || !Directory.Exists(export)))
            problems.Add($"Dashboard:ExportRoot '{export}' is not an absolute path of an existing folder; create the folder (writable by this process) or leave it empty to turn export from the dashboard off.");
        for (var i = 0; i < AllowedHosts.Count; i++)
        {
            var h = AllowedHosts[i] ?? "";
            if (!HostNames.IsPlainHost(h))
                problems.Add($"Dashboard:AllowedHosts:{i} '{h}' is not a host name or IP address; give the bare name browsers use (workers.example.org), without scheme, port or path.");
        }
        if (LoginFailuresAllowed < 1) problems.Add($"Dashboard:LoginFailuresAllowed must be at least 1 (got {LoginFailuresAllowed}).");
        if (LoginThrottleSeconds is < 1 or > 86_400) problems.Add($"Dashboard:LoginThrottleSeconds must be between 1 and 86400 (got {LoginThrottleSeconds}).");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Users.Count; i++)
        {
            var u = Users[i];
            var at = $"Dashboard:Users:{i}";
            if (string.IsNullOrWhiteSpace(u.Name)) problems.Add($"{at}:Name is empty.");
            else if (u.Name.Contains(':')) problems.Add($"{at}:Name '{u.Name}' contains ':', which HTTP Basic authentication cannot carry.");
            else if (!seen.Add(u.Name)) problems.Add($"{at}:Name '{u.Name}' is listed twice.");
            if (u.Role is not (DashboardRoles.Admin or DashboardRoles.ReadOnly))
                problems.Add($"{at}:Role is '{u.Role}'; use '{DashboardRoles.Admin}' or '{DashboardRoles.ReadOnly}'.");
            if (!PasswordHash.TryParse(u.PasswordHash, out _))
                problems.Add($"{at}:PasswordHash is not a hash made by `workers serve --hash-password` (pbkdf2-sha256$ITERATIONS$SALT$HASH).");
        }
        if (LocalRequiresCredentials && Users.Count == 0)
            problems.Add("Dashboard:LocalRequiresCredentials is true but no Dashboard:Users are configured: nobody could get in.");
        return problems;
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex ValidSchema();
}

public sealed class DashboardUser
{
    public string Name { get; set; } = "";

    /// <value>The default value is <c>readonly</c>.</value>
    public string Role { get; set; } = DashboardRoles.ReadOnly;

    /// <summary>PBKDF2 hash and salt, as printed by <c>workers serve --hash-password</c>.</summary>
    public string PasswordHash { get; set; } = "";
}

public static class DashboardRoles
{
    /// <summary>May read and act (POST).</summary>
    public const string Admin = "admin";
    /// <summary>May read only.</summary>
    public const string ReadOnly = "readonly";
}
