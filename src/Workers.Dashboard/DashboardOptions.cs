using Workers.Dashboard.Security;

namespace Workers.Dashboard;

/// <summary>
/// Options of section <c>Dashboard</c>. With no <see cref="Users"/>, the dashboard answers requests
/// from this machine (loopback) only, as Hangfire's dashboard does; every other request gets 403.
/// </summary>
public sealed class DashboardOptions
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

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
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
