"""Offline revisits: offline.json lists the app's files; the service worker (web/sw.js) keeps
them, the page keeps the models it used; an export served at a sub-path, visited once, then
reloads and generates in real Chromium with the network cut and its server gone."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gpt2web.host.offline import listing, write_listing
from gpt2web.host.policy import SECURITY_HEADERS

REPO = Path(__file__).resolve().parents[1]
BOOT_TIMEOUT = 120_000


def test_listing_names_the_app_files_with_their_hashes(tmp_path):
    import hashlib

    (tmp_path / "runtime").mkdir()
    (tmp_path / "weights" / "demo").mkdir(parents=True)
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "app.js").write_text("export {};\n")
    (tmp_path / "runtime" / "pyodide.asm.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tmp_path / "sw.js").write_text("// the service worker itself\n")
    (tmp_path / "weights" / "demo" / "manifest.json").write_text("{}")
    (tmp_path / "models.json").write_text("{}")
    (tmp_path / ".secret").write_text("x")
    got = listing(tmp_path)
    assert [f["path"] for f in got["files"]] == ["app.js", "index.html", "runtime/pyodide.asm.wasm"]
    wasm = got["files"][2]
    assert wasm == {"path": "runtime/pyodide.asm.wasm", "bytes": 8,
                    "sha256": hashlib.sha256(b"\0asm\1\0\0\0").hexdigest()}
    # Any change to any file is a new version; the same files, the same version.
    assert listing(tmp_path)["version"] == got["version"]
    (tmp_path / "app.js").write_text("export const changed = 1;\n")
    assert listing(tmp_path)["version"] != got["version"]
    assert json.loads(write_listing(tmp_path).read_text()) == listing(tmp_path)


def test_listing_takes_folders_served_from_elsewhere(tmp_path):
    (tmp_path / "web" / "runtime").mkdir(parents=True)
    (tmp_path / "web" / "index.html").write_text("<!doctype html>")
    (tmp_path / "web" / "runtime" / "stale.js").write_text("// not served: the cache's runtime is")
    (tmp_path / "cache" / "sub").mkdir(parents=True)
    (tmp_path / "cache" / "pyodide.mjs").write_text("export {};\n")
    (tmp_path / "cache" / "sub" / "x.json").write_text("{}")
    got = listing(tmp_path / "web", {"runtime": tmp_path / "cache", "wheels": None})
    assert [f["path"] for f in got["files"]] == ["index.html", "runtime/pyodide.mjs", "runtime/sub/x.json"]


def test_server_answers_offline_json_for_its_web_folder(tmp_path):
    from gpt2web.host.server import create_app

    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("<!doctype html>")
    r = TestClient(create_app(tmp_path)).get("/offline.json")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    assert r.json() == listing(tmp_path / "web")
    # A runtime served from another folder is the one listed.
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "pyodide.mjs").write_text("export {};\n")
    r = TestClient(create_app(tmp_path, runtime_dir=tmp_path / "cache")).get("/offline.json")
    assert [f["path"] for f in r.json()["files"]] == ["index.html", "runtime/pyodide.mjs"]


# ---------------------------------------------------------------- an export at a sub-path


class SubPathServer:
    """A plain static server for `folder`, which holds the export at /demo/; stoppable."""

    def __init__(self, folder: Path):
        class Handler(http.server.SimpleHTTPRequestHandler):
            extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                              ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
                              ".json": "application/json", ".css": "text/css"}

            def end_headers(self):
                for name, value in SECURITY_HEADERS.items():
                    self.send_header(name, value)
                super().end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def exported(web_build, weights_dir, tmp_path_factory):
    from gpt2web.host.export import export

    root = tmp_path_factory.mktemp("export-root")
    (root / "web").symlink_to(web_build)
    (root / "weights").symlink_to(weights_dir)
    site = tmp_path_factory.mktemp("site")
    export(root, site / "demo", models=["demo"], log=lambda m: None)
    return site


def _ready(page):
    """The model is loaded (a reload of a page whose address records a text replays it: "done")."""
    page.wait_for_function("() => ['ready', 'done', 'error'].includes(document.querySelector('#status').dataset.state)",
                           timeout=BOOT_TIMEOUT)
    assert page.get_attribute("#status", "data-state") in ("ready", "done"), page.inner_text("#error")


def _generate(page, seed=4, n=5):
    page.fill("#prompt", "I wish you a happy New")
    page.fill("#temperature", "1")
    page.fill("#top_k", "0")
    page.fill("#top_p", "1")
    page.fill("#seed", str(seed))
    page.fill("#max_tokens", str(n))
    page.click("#generate")
    page.wait_for_function("() => ['done', 'error'].includes(document.querySelector('#status').dataset.state)",
                           timeout=60_000)
    assert page.get_attribute("#status", "data-state") == "done", page.inner_text("#error")
    return page.eval_on_selector_all("#tokens .chip", "els => els.map(e => Number(e.dataset.id))")


@pytest.mark.browser
def test_export_at_a_sub_path_reloads_and_generates_offline(browser, exported, engine):
    from gpt2web.sampling import SamplingParams

    server = SubPathServer(exported)
    context = browser.new_context()
    context.set_default_timeout(30_000)
    refused: list[str] = []  # the export is served under the strict policy: nothing may be refused
    context.on("console", lambda m: "Content Security Policy" in m.text and refused.append(m.text))
    try:
        page = context.new_page()
        page.on("console", lambda m: m.type in ("error", "warning") and print("console:", m.text))
        page.goto(server.url + "demo/")
        # Generate at once, before the model is ready (the page never shows "ready" then).
        page.wait_for_selector("#model option[value='demo']", state="attached")
        page.click("#generate")
        page.wait_for_function("() => ['done', 'error'].includes(document.querySelector('#status').dataset.state)",
                               timeout=BOOT_TIMEOUT)
        # The control says what is kept, once the service worker has the whole app.
        page.wait_for_selector("#offline[data-app='kept'][data-models~='demo']", state="attached",
                               timeout=BOOT_TIMEOUT)
        text = page.inner_text("#offline-text")
        assert "the app and its runtime" in text and "model demo" in text and "MB" in text, text
        scope = page.evaluate("navigator.serviceWorker.getRegistration().then(r => r.scope)")
        assert scope == server.url + "demo/"

        # Cut the network: the browser is offline and the server is gone.
        context.set_offline(True)
        server.stop()
        page.reload()
        _ready(page)
        gen = engine.generate("I wish you a happy New", SamplingParams(1, 0, 1, 4), max_tokens=5)
        assert _generate(page) == [s["id"] for s in gen]
        assert page.locator("#bars li.cand").count() > 0

        # The lesson page of the same folder too, with its widgets, and a page address with a query.
        page.goto(server.url + "demo/embed.html?from=offline")
        page.wait_for_selector("#next-table ol.bars li.cand", timeout=BOOT_TIMEOUT)
        table = engine.next_tokens("In the beginning God created the", 8)
        shown = page.eval_on_selector_all("#next-table ol.bars:not(.outside) li.cand",
                                          "els => els.map(li => Number(li.dataset.id))")
        assert shown == [t["id"] for t in table]
        page.goto(server.url + "demo/?from=offline")
        _ready(page)

        # Clear: nothing of this folder is kept any more.
        page.click("#offline-clear")
        page.wait_for_selector("#offline[data-app='none']", state="attached")
        assert "Cleared" in page.inner_text("#offline-text")
        left = page.evaluate("""async () => {
            const names = await caches.keys();
            const shards = await (await caches.open('gpt2web-shards-v1')).keys();
            return names.filter(n => n.startsWith('gpt2web-app')).concat(shards.map(r => r.url));
        }""")
        assert left == []
        assert page.evaluate("navigator.serviceWorker.getRegistration().then(r => r ?? null)") is None
        assert refused == []
    finally:
        context.close()
        server.stop() if server.thread.is_alive() else None


@pytest.mark.browser
def test_an_update_is_kept_whole_before_it_serves(browser, web_build, weights_dir, tmp_path):
    """A new version on the server never mixes with the kept one: the page keeps running the old
    files until the new version is complete and the reader asks for it."""
    from gpt2web.host.export import export

    root = tmp_path / "root"
    root.mkdir()
    (root / "web").symlink_to(web_build)
    (root / "weights").symlink_to(weights_dir)
    export(root, tmp_path / "site" / "demo", models=["demo"], log=lambda m: None)
    app = tmp_path / "site" / "demo"
    server = SubPathServer(tmp_path / "site")
    context = browser.new_context()
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto(server.url + "demo/")
        _ready(page)
        page.wait_for_selector("#offline[data-app='kept']", state="attached", timeout=BOOT_TIMEOUT)
        old = json.loads((app / "offline.json").read_text())["version"]

        # The server gets a new version: one file changes.
        style = app / "style.css"
        style.write_text(style.read_text() + "\n/* version 2 */\n")
        new = json.loads(write_listing(app).read_text())["version"]
        assert new != old
        page.reload()
        _ready(page)
        page.wait_for_selector("#offline-update:not([hidden])", timeout=BOOT_TIMEOUT)
        # Still the old version, whole: the style sheet too.
        css = "() => fetch('style.css').then(r => r.text())"
        assert "version 2" not in page.evaluate(css)
        names = page.evaluate("caches.keys()")
        assert sorted(n.rsplit(" ", 1)[1] for n in names if n.startswith("gpt2web-app")) == sorted([old, new])

        # The reader takes the update: the page reloads on the new version, the old one is gone.
        with page.expect_navigation():
            page.click("#offline-update")
        _ready(page)
        assert "version 2" in page.evaluate(css)
        page.wait_for_function("""() => caches.keys().then(ns => ns.filter(n => n.startsWith('gpt2web-app')).length === 1)""")
        names = page.evaluate("caches.keys()")
        assert [n.rsplit(" ", 1)[1] for n in names if n.startswith("gpt2web-app")] == [new]
    finally:
        context.close()
        server.stop()
