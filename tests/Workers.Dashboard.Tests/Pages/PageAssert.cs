using System.Text.RegularExpressions;
using System.Net;

namespace Workers.Dashboard.Tests.Pages;

/// <summary>Fetching a page as HTML, and the checks every page shares.</summary>
internal static class PageAssert
{
    /// <summary>Our items in Hangfire's navigation menu, and two of its own.</summary>
    public static readonly (string Href, string Text)[] NavLinks =
    [
        ("/corpora", "Corpora"), ("/enqueue", "Enqueue"), ("/export", "Export"), ("/shards", "Shards"), ("/failures", "Failures"), ("/fleet", "Fleet"), ("/audit", "Audit"),
        ("/jobs/enqueued", "Jobs"), ("/recurring", "Recurring Jobs"),
    ];

    public static async Task<string> GetHtmlAsync(this TestDashboard d, string url, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, url));
        var html = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == expected, $"{url}: {(int)r.StatusCode}, expected {(int)expected}: {html}");
        Assert.StartsWith("text/html", r.Content.Headers.ContentType?.MediaType);
        return html;
    }

    /// <summary>The page is inside Hangfire's layout, with our items in its menu.</summary>
    public static void HasNav(string html)
    {
        Assert.Contains("navbar", html);
        foreach (var (href, text) in NavLinks)
            Assert.Matches($"<a href=\"{Regex.Escape(href)}\"[^>]*>\\s*{Regex.Escape(text)}", html);
    }
}
