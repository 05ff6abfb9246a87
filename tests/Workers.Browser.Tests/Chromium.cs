using Microsoft.Playwright;

namespace Workers.Browser.Tests;

/// <summary>
/// Playwright (its bundled node driver, from the NuGet package's .playwright folder) driving Debian's
/// chromium, which ops/setup.sh installs. Playwright's own browser builds are never downloaded: the
/// executable is given, and nothing here calls `playwright install`.
/// </summary>
public sealed class Chromium : IAsyncDisposable
{
    public const string ExecutablePath = "/usr/bin/chromium";

    private readonly IPlaywright _playwright;

    private Chromium(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        Browser = browser;
    }

    public IBrowser Browser { get; }

    /// <summary>Starts headless chromium; throws (never skips) when it is missing, saying how to install it.</summary>
    public static async Task<Chromium> LaunchAsync()
    {
        if (!File.Exists(ExecutablePath))
            throw new InvalidOperationException(
                $"The browser tests need Debian's chromium at {ExecutablePath}, which is not installed. Run ops/setup.sh " +
                "(it apt-get installs chromium); these tests never download a browser of their own.");
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        var playwright = await Playwright.CreateAsync();
        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new()
            {
                ExecutablePath = ExecutablePath,
                Headless = true,
                // Root has no user namespaces for the sandbox; there is no GPU; /dev/shm may be small in containers.
                Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                Timeout = 60_000,
            });
            return new Chromium(playwright, browser);
        }
        catch (PlaywrightException e)
        {
            playwright.Dispose();
            throw new InvalidOperationException(
                $"Playwright could not start {ExecutablePath} ({e.Message.Split('\n')[0]}). Run ops/setup.sh to install or repair Debian's chromium.", e);
        }
    }

    /// <summary>A fresh context (cookies of its own) and page, with relative URLs against <paramref name="baseUrl"/>.</summary>
    public async Task<IPage> NewPageAsync(string baseUrl)
    {
        var context = await Browser.NewContextAsync(new() { BaseURL = baseUrl, ViewportSize = new() { Width = 1280, Height = 900 } });
        return await context.NewPageAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.CloseAsync();
        _playwright.Dispose();
    }
}
