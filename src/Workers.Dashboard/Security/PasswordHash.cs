using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Workers.Dashboard.Security;

/// <summary>
/// PBKDF2-HMAC-SHA256 password hashes in one string, <c>pbkdf2-sha256$ITERATIONS$SALT$HASH</c> (salt
/// and hash in base64), so the iteration count can be raised later without breaking stored hashes.
/// Verification compares in constant time.
/// </summary>
public sealed record PasswordHash(int Iterations, byte[] Salt, byte[] Hash)
{
    public const string Scheme = "pbkdf2-sha256";

    /// <summary>Iterations for new hashes (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).</summary>
    public const int DefaultIterations = 600_000;

    private const int SaltBytes = 16;
    private const int HashBytes = 32;

    public static PasswordHash Create(string password, int iterations = DefaultIterations)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 10_000);
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        return new PasswordHash(iterations, salt, Derive(password, salt, iterations));
    }

    public bool Verify(string password) =>
        CryptographicOperations.FixedTimeEquals(Derive(password, Salt, Iterations), Hash);

    public override string ToString() =>
        string.Join('$', Scheme, Iterations.ToString(CultureInfo.InvariantCulture), Convert.ToBase64String(Salt), Convert.ToBase64String(Hash));

    public static bool TryParse(string? text, [NotNullWhen(true)] out PasswordHash? hash)
    {
        hash = null;
        var parts = (text ?? "").Split('$');
        if (parts.Length != 4 || parts[0] != Scheme) return false;
        if (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var iterations) || iterations < 10_000) return false;
        try
        {
            var salt = Convert.FromBase64String(parts[2]);
            var h = Convert.FromBase64String(parts[3]);
            if (salt.Length < 8 || h.Length != HashBytes) return false;
            hash = new PasswordHash(iterations, salt, h);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static byte[] Derive(string password, byte[] salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, HashBytes);
}
