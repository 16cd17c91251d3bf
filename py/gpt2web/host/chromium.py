"""The browser the tests, `gpt2web bench` and the measurement scripts drive: Debian's Chromium,
headless, through Playwright (which never downloads a browser here: `executable_path=CHROMIUM`)."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--no-proxy-server",  # the server is on 127.0.0.1; never route it through a proxy
]
