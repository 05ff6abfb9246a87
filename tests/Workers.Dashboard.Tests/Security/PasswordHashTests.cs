using Workers.Dashboard.Security;

namespace Workers.Dashboard.Tests.Security;

public sealed class PasswordHashTests
{
    [Fact]
    public void A_hash_round_trips_through_its_text_and_verifies_only_its_own_password()
    {
        var h = PasswordHash.Create("s3cret", 10_000);
        var text = h.ToString();
        Assert.StartsWith("pbkdf2-sha256$10000$", text);
        Assert.True(PasswordHash.TryParse(text, out var back));
        Assert.True(back.Verify("s3cret"));
        Assert.False(back.Verify("s3cret "));
        Assert.NotEqual(text, PasswordHash.Create("s3cret", 10_000).ToString()); // salted
    }

    [Theory]
    [InlineData("")]
    [InlineData("plain-text-password")]
    [InlineData("pbkdf2-sha256$100$AAAAAAAAAAA=$AAAA")]
    [InlineData("md5$10000$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    public void Anything_but_a_valid_pbkdf2_hash_is_rejected_by_option_validation(string hash)
    {
        Assert.False(PasswordHash.TryParse(hash, out _));
        var o = new DashboardOptions { Users = [new DashboardUser { Name = "u", Role = "admin", PasswordHash = hash }] };
        Assert.Contains(o.Validate(), p => p.Contains("PasswordHash"));
    }
}
