using System.Net;
using Microsoft.AspNetCore.Http;

namespace Workers.Dashboard.Security;

/// <summary>
/// Which host names a request may name (its <c>Host</c>, its <c>Origin</c>): loopback names always,
/// plus <see cref="DashboardOptions.AllowedHosts"/>. Compared without case and without a final dot.
/// </summary>
public sealed class HostNames
{
    private readonly HashSet<string> _configured;

    public HostNames(DashboardOptions options) =>
        _configured = new HashSet<string>(options.AllowedHosts.Select(Normalize), StringComparer.Ordinal);

    /// <summary>Whether <paramref name="host"/> (without port; IPv6 in brackets or not) may be used to reach the dashboard.</summary>
    public bool IsAllowed(string? host)
    {
        if (string.IsNullOrEmpty(host)) return false;
        var h = Normalize(host);
        return IsLoopbackName(h) || _configured.Contains(h);
    }

    /// <summary>"localhost" or a loopback address: names a browser resolves to this machine without asking DNS.</summary>
    public static bool IsLoopbackName(string host)
    {
        var h = Normalize(host);
        return h == "localhost" || (IPAddress.TryParse(h.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
    }

    /// <summary>A bare host name or IP address (what <see cref="DashboardOptions.AllowedHosts"/> holds).</summary>
    public static bool IsPlainHost(string text) =>
        text.Length > 0 && text.Trim() == text
        && Uri.CheckHostName(text.StartsWith('[') && text.EndsWith(']') ? text[1..^1] : text) is UriHostNameType.Dns or UriHostNameType.IPv4 or UriHostNameType.IPv6;

    /// <summary>Whether <paramref name="origin"/> (scheme://host[:port]) names the same host and port as <paramref name="host"/>.</summary>
    public static bool SameAuthority(Uri origin, HostString host) =>
        string.Equals(Normalize(origin.Host), Normalize(host.Host), StringComparison.Ordinal)
        && (host.Port is { } p ? origin.Port == p : origin.IsDefaultPort);

    private static string Normalize(string host) => host.TrimEnd('.').ToLowerInvariant();
}
