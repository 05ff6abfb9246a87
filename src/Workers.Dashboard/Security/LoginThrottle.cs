namespace Workers.Dashboard.Security;

/// <summary>
/// Limits password guessing (issue 13): after <see cref="DashboardOptions.LoginFailuresAllowed"/>
/// sign-in attempts without a success, from one client address or for one user name, within
/// <see cref="DashboardOptions.LoginThrottleSeconds"/> of the first of them, further attempts are
/// refused at once (429, Retry-After) without running PBKDF2, so a flood of wrong passwords can
/// neither guess on nor eat the CPU that valid requests need.
/// An attempt is counted when it starts, not when it fails, so a burst of parallel guesses is cut
/// off at the limit too; a success clears its client and its user. The caller never asks for
/// loopback requests: an administrator on this machine cannot be locked out.
/// </summary>
public sealed class LoginThrottle(DashboardOptions options, TimeProvider time)
{
    /// <summary>Above this many tracked keys, expired ones are swept (a flood of made-up user names).</summary>
    internal const int SweepAbove = 10_000;

    private readonly int _allowed = options.LoginFailuresAllowed;
    private readonly TimeSpan _window = TimeSpan.FromSeconds(options.LoginThrottleSeconds);
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (int Attempts, DateTimeOffset Until)> _keys = new(StringComparer.Ordinal);

    /// <summary>
    /// Starts a sign-in attempt by <paramref name="client"/> as <paramref name="user"/>: null when it may
    /// go on (and is now counted), else how long until it may be tried again.
    /// </summary>
    public TimeSpan? TryBegin(string client, string user)
    {
        var now = time.GetUtcNow();
        var (c, u) = (ClientKey(client), UserKey(user));
        lock (_lock)
        {
            if (_keys.Count > SweepAbove)
                foreach (var k in _keys.Where(kv => kv.Value.Until <= now).Select(kv => kv.Key).ToList()) _keys.Remove(k);
            var wait = TimeSpan.Zero;
            foreach (var k in (ReadOnlySpan<string>)[c, u])
                if (_keys.TryGetValue(k, out var e) && e.Until > now && e.Attempts >= _allowed && e.Until - now > wait) wait = e.Until - now;
            if (wait > TimeSpan.Zero) return wait;
            Count(c, now);
            Count(u, now);
            return null;
        }
    }

    /// <summary>The attempt succeeded: its client and user start afresh.</summary>
    public void Succeeded(string client, string user)
    {
        lock (_lock)
        {
            _keys.Remove(ClientKey(client));
            _keys.Remove(UserKey(user));
        }
    }

    private void Count(string key, DateTimeOffset now) =>
        _keys[key] = _keys.TryGetValue(key, out var e) && e.Until > now ? (e.Attempts + 1, e.Until) : (1, now + _window);

    private static string ClientKey(string client) => "client:" + client;
    private static string UserKey(string user) => "user:" + user;
}
