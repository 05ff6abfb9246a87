using System.Net;

namespace Workers.Dashboard.Tests.Pages;

/// <summary>Fetching a page as HTML, and the checks every page shares.</summary>
internal static class PageAssert
{
    public static readonly string[] NavLinks =
    [
        "<a href=\"/\">Overview</a>", "<a href=\"/enqueue\">Enqueue</a>", "<a href=\"/shards\">Shards</a>",
        "<a href=\"/failures\">Failures</a>", "<a href=\"/fleet\">Fleet</a>", "<a href=\"/audit\">Audit</a>",
    ];

    public static async Task<string> GetHtmlAsync(this TestDashboard d, string url, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var r = await d.Client.SendAsync(TestDashboard.Request(HttpMethod.Get, url));
        var html = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == expected, $"{url}: {(int)r.StatusCode}, expected {(int)expected}: {html}");
        Assert.StartsWith("text/html", r.Content.Headers.ContentType?.MediaType);
        return html;
    }

    public static void HasNav(string html)
    {
        Assert.Contains("<nav>", html);
        foreach (var link in NavLinks) Assert.Contains(link, html);
    }
}
