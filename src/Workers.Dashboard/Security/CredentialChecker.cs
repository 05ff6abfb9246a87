using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Workers.Dashboard.Security;

/// <summary>
/// Checks HTTP Basic credentials against <see cref="DashboardOptions.Users"/>. PBKDF2 at 600,000
/// iterations costs ~0.2 s of CPU, and Basic authentication sends the password with every request
/// (the overview polls every 5 s), so a successful check is remembered for a few minutes as an
/// HMAC of the password under a key that lives only in this process's memory; a later request is
/// compared against that in constant time. A wrong password never enters the cache.
/// </summary>
public sealed class CredentialChecker
{
    /// <summary>How long a verified password is remembered.</summary>
    public static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(5);

    private readonly Dictionary<string, (DashboardUser User, PasswordHash Hash)> _users;
    private readonly byte[] _cacheKey = RandomNumberGenerator.GetBytes(32);
    private readonly ConcurrentDictionary<string, (byte[] Mac, DateTimeOffset Until)> _verified = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    // Verified for unknown user names, so their answer takes as long as a known user's wrong password:
    // at the highest iteration count of any configured hash, so no known user is slower than an
    // unknown one (issue 13: a fixed 100,000 against 600,000 told which names exist).
    private readonly PasswordHash _decoy;

    public CredentialChecker(DashboardOptions options, TimeProvider time)
    {
        _time = time;
        _users = options.Users.ToDictionary(u => u.Name, u => (u, PasswordHash.TryParse(u.PasswordHash, out var h)
            ? h : throw new ArgumentException($"Dashboard user '{u.Name}' has an invalid PasswordHash.")), StringComparer.Ordinal);
        // With no users nobody is checked (credentials are refused before), so the decoy stays cheap.
        var iterations = _users.Count == 0 ? 10_000 : _users.Values.Max(e => e.Hash.Iterations);
        _decoy = PasswordHash.Create(Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)), iterations);
    }

    /// <summary>The PBKDF2 iterations an unknown user name costs.</summary>
    internal int DecoyIterations => _decoy.Iterations;

    public bool AnyUsers => _users.Count > 0;

    /// <summary>The user, when the name is known and the password is right; otherwise null.</summary>
    public DashboardUser? Check(string name, string password)
    {
        if (!_users.TryGetValue(name, out var entry))
        {
            _decoy.Verify(password);
            return null;
        }
        var mac = HMACSHA256.HashData(_cacheKey, Encoding.UTF8.GetBytes(password));
        var now = _time.GetUtcNow();
        if (_verified.TryGetValue(name, out var seen) && seen.Until > now && CryptographicOperations.FixedTimeEquals(seen.Mac, mac))
            return entry.User;
        if (!entry.Hash.Verify(password)) return null;
        _verified[name] = (mac, now + CacheFor);
        return entry.User;
    }
}
