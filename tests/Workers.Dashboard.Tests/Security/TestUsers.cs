using Workers.Dashboard.Security;

namespace Workers.Dashboard.Tests.Security;

/// <summary>The dashboard users and the remote address the access tests share (ours and Hangfire's pages).</summary>
internal static class TestUsers
{
    /// <summary>A documentation address (RFC 5737): never loopback.</summary>
    public const string Remote = "203.0.113.7";
    public static readonly (string, string) Admin = ("ada", "correct horse");
    public static readonly (string, string) Reader = ("rita", "battery staple");

    /// <summary>An admin and a readonly user (cheap hashes: these tests are about roles, not cost).</summary>
    public static DashboardOptions WithUsers() => new()
    {
        Users =
        [
            new DashboardUser { Name = "ada", Role = DashboardRoles.Admin, PasswordHash = PasswordHash.Create("correct horse", 10_000).ToString() },
            new DashboardUser { Name = "rita", Role = DashboardRoles.ReadOnly, PasswordHash = PasswordHash.Create("battery staple", 10_000).ToString() },
        ],
    };
}
