"""Security headers: `gpt2web serve` and an export's serve.py send nosniff, a Referrer-Policy and
a strict Content-Security-Policy, and the page, the widget and web/embed.html run under it in
real Chromium without one violation (no inline script or style, no eval)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gpt2web.host.policy import CONTENT_SECURITY_POLICY, SECURITY_HEADERS
from gpt2web.host.server import create_app

REPO = Path(__file__).resolve().parents[1]
BOOT_TIMEOUT = 120_000


def test_policy_is_the_strict_one():
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert directives["style-src"] == "'self'"
    assert directives["worker-src"] == "'self' blob:"
    assert not any("unsafe-inline" in v or "'unsafe-eval'" in v for v in directives.values())


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from test_server import make_site

    return TestClient(create_app(make_site(tmp_path_factory.mktemp("site"))))


@pytest.mark.parametrize("url", ["/", "/worker.js", "/runtime/pyodide.asm.wasm", "/models.json",
                                 "/weights/gpt2/h.0.3fa9c0d1e2b3a4f5.bin", "/nothing-here.js"])
def test_server_sends_the_security_headers(client, url):
    r = client.get(url)
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, (url, name)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"]


def test_range_responses_carry_them_too(client):
    r = client.get("/weights/gpt2/h.0.3fa9c0d1e2b3a4f5.bin", headers={"Range": "bytes=0-9"})
    assert r.status_code == 206
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_exported_serve_py_sends_them(tmp_path):
    from gpt2web.host.export import SERVE_PY

    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>")
    (tmp_path / "serve.py").write_text(SERVE_PY.replace("@HEADERS@", repr(SECURITY_HEADERS)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(tmp_path / "serve.py"), str(port)], stdout=subprocess.PIPE)
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for _ in range(100):
            try:
                r = opener.open(f"http://127.0.0.1:{port}/index.html", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        for name, value in SECURITY_HEADERS.items():
            assert r.headers[name] == value, name
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("page", sorted(p.name for p in (REPO / "web").glob("*.html")))
def test_pages_have_no_inline_script_or_style(page):
    html = (REPO / "web" / page).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert "<style" not in html, "inline <style>"
    assert not re.search(r"\sstyle=", html), "style attribute"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"


# ---------------------------------------------------------------- in Chromium, under the policy

# Collects every violation the document reports (workers' ones reach the console, below).
LISTEN = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(
    `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`));
"""
REFUSED = re.compile(r"Content Security Policy|Refused to", re.I)


def _watch(context):
    seen: list[str] = []
    context.add_init_script(LISTEN)
    context.on("console", lambda m: REFUSED.search(m.text) and seen.append(m.text))
    context.on("weberror", lambda e: seen.append(f"error: {e.error}"))
    return seen


def _violations(page, seen):
    return seen + page.evaluate("window.__violations")


def _wait(page, seen, ready, timeout=BOOT_TIMEOUT):
    """Wait until `ready` (a JS function) is true; fail at once on a violation (a refused wasm
    compile, for one, leaves the runtime waiting forever)."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(ready):
        assert _violations(page, seen) == []
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(250)
    assert _violations(page, seen) == []


@pytest.mark.browser
@pytest.mark.parametrize("boot", ["snapshot", "plain"])
def test_page_runs_under_the_policy(browser, server, boot):
    context = browser.new_context(service_workers="block")
    context.set_default_timeout(30_000)
    seen = _watch(context)
    if boot == "plain":  # no snapshot on the server: Python starts the plain way
        context.route("**/runtime/snapshot.json", lambda route: route.fulfill(status=404, body="Not Found"))
    try:
        page = context.new_page()
        response = page.goto(server, wait_until="domcontentloaded")
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        _wait(page, seen, "() => ['ready', 'error'].includes(document.querySelector('#status').dataset.state)")
        assert page.get_attribute("#status", "data-state") == "ready", page.inner_text("#error")
        page.fill("#max_tokens", "4")
        page.fill("#seed", "3")
        page.click("#generate")
        page.wait_for_function("() => ['done', 'error'].includes(document.querySelector('#status').dataset.state)",
                               timeout=60_000)
        assert page.get_attribute("#status", "data-state") == "done", page.inner_text("#error")
        assert page.locator("#tokens .chip").count() == 4
        assert page.locator("#bars li.cand").count() > 0
        # The interpreter came from the memory snapshot (when set-up built one), under the policy.
        ready = page.evaluate("""async () => {
            const { GPT2Client } = await import(new URL('client.js', location.href).href);
            return new Promise((resolve) => GPT2Client.shared().send({ type: 'load', model: 'demo' }, resolve));
        }""")
        assert ready["type"] == "ready", ready
        if boot == "plain" or (REPO / "web" / "runtime" / "snapshot.json").exists():
            assert ready["boot"] == boot, ready["boot_info"]
        assert _violations(page, seen) == []
    finally:
        context.close()


@pytest.mark.browser
def test_widget_page_runs_under_the_policy(browser, server):
    context = browser.new_context(service_workers="block")
    context.set_default_timeout(30_000)
    seen = _watch(context)
    try:
        page = context.new_page()
        page.goto(f"{server}embed.html", wait_until="domcontentloaded")
        page.wait_for_selector("#next-table ol.bars li.cand", timeout=BOOT_TIMEOUT)
        _wait(page, seen, "() => ['ready', 'error'].includes(document.getElementById('greedy').state)")
        page.locator("#greedy").get_by_role("button", name="Generate", exact=True).click()
        page.wait_for_function("() => ['done', 'error'].includes(document.getElementById('greedy').state)",
                               timeout=60_000)
        assert page.evaluate("document.getElementById('greedy').state") == "done"
        # The page's own style sheet applies (it is a file now, not an inline <style>).
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(251, 250, 247)"
        assert _violations(page, seen) == []
    finally:
        context.close()


@pytest.mark.browser
def test_a_policy_without_wasm_is_named_at_once(browser, server):
    """A site whose policy forbids compiling WebAssembly gets a message saying so, not a page
    that waits forever (the real server's answers, with 'wasm-unsafe-eval' taken out)."""
    strict = CONTENT_SECURITY_POLICY.replace(" 'wasm-unsafe-eval'", "")
    context = browser.new_context(service_workers="block")
    context.set_default_timeout(30_000)

    def without_wasm(route):
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": strict})

    context.route(re.compile(r".*/(|worker\.js)$"), without_wasm)
    try:
        page = context.new_page()
        page.goto(server)
        page.wait_for_selector("#error:not([hidden])", timeout=60_000)
        message = page.inner_text("#error")
        assert "wasm-unsafe-eval" in message and "Content-Security-Policy" in message, message
    finally:
        context.close()
