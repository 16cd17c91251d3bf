"""Downloads that fail, in real Chromium against the real server with faults put in front of it:
a shard cut off mid-stream resumes with a Range request; a server that stalls is given up on and
resumed; a server error is retried; a shard that is missing, truncated on the server or corrupt
is named in the message, not retried where that cannot help, and never cached. A model too big
for the device is refused before any shard is downloaded; a full storage quota means working
without the cache; a browser without WebAssembly SIMD runs the NumPy path and says so."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("playwright")

from gpt2web.host.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
BOOT_TIMEOUT = 120_000
STALL_S = 15  # download.js STALL_MS
PROMPT = "I wish you a happy New"


class Faults:
    """ASGI middleware: the first plain GET of each shard of model `cut` stops half-way (the
    connection closes), of `slow` stalls half-way for longer than the page waits (first shard
    only), of `flaky` answers 503. Every request is logged as (path, Range header)."""

    def __init__(self, app):
        self.app = app
        self.log: list[tuple[str, str | None]] = []
        self.done: set[str] = set()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        rng = dict(scope["headers"]).get(b"range")
        self.log.append((path, rng.decode() if rng else None))
        m = re.match(r"^/weights/(cut|slow|flaky)/[^/]+\.bin$", path)
        if not m or rng or path in self.done:
            return await self.app(scope, receive, send)
        fault = m.group(1)
        if fault == "slow" and any(p.startswith("/weights/slow/") for p in self.done):
            return await self.app(scope, receive, send)
        self.done.add(path)
        if fault == "flaky":
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"4")]})
            await send({"type": "http.response.body", "body": b"busy"})
            return
        state = {"size": 0, "sent": 0}

        async def cut_send(message):
            if message["type"] == "http.response.start":
                state["size"] = int(dict(message["headers"]).get(b"content-length", b"0"))
                return await send(message)
            body = message.get("body", b"")
            half = state["size"] // 2
            if state["sent"] + len(body) < half:
                state["sent"] += len(body)
                return await send(message)
            await send({"type": "http.response.body", "body": body[:half - state["sent"]], "more_body": True})
            if fault == "slow":
                await asyncio.sleep(3600)  # a connection that stays open and sends nothing
            raise ConnectionAbortedError("the connection is cut on purpose")

        try:
            await self.app(scope, receive, cut_send)
        except ConnectionAbortedError:
            raise


@pytest.fixture(scope="module")
def fault_weights(weights_dir, tmp_path_factory) -> Path:
    weights = tmp_path_factory.mktemp("fault-weights")
    shutil.copy(weights_dir / "gpt2.tiktoken", weights)
    for name in ("cut", "slow", "flaky", "short", "huge", "demo"):
        shutil.copytree(weights_dir / "demo", weights / name)
    for name in ("corrupt", "missing"):
        shutil.copytree(weights_dir / name, weights / name)
    # short: the server's copy of one shard lacks its last 100 bytes.
    manifest = json.loads((weights / "short" / "manifest.json").read_text())
    shard = weights / "short" / manifest["shards"][1]["file"]
    shard.write_bytes(shard.read_bytes()[:-100])
    # huge: a manifest announcing 3 GB shards (they are never fetched).
    manifest = json.loads((weights / "huge" / "manifest.json").read_text())
    for s in manifest["shards"]:
        s["bytes"] = 3_000_000_000
    (weights / "huge" / "manifest.json").write_text(json.dumps(manifest))
    return weights


@pytest.fixture(scope="module")
def fault_server(web_build, fault_weights):
    import uvicorn

    from gpt2web.host.server import _bind, create_app

    faults = Faults(create_app(REPO, weights_dir=fault_weights))
    sock = _bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(faults, log_level="critical", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    faults.url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    yield faults
    server.should_exit = True
    thread.join(10)
    sock.close()


def manifest_of(weights: Path, name: str) -> dict:
    return json.loads((weights / name / "manifest.json").read_text())


@pytest.fixture()
def page(browser, fault_server):
    context = browser.new_context(service_workers="block")
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and print("console:", m.text))
    page.goto(fault_server.url + "bench.html")  # a page of the app's origin that loads nothing itself
    yield page
    context.close()


def load(page, model: str, timeout=BOOT_TIMEOUT) -> dict:
    """Load `model` through the page's own client; the worker's final answer ({type: "hung"}
    if none came within `timeout` ms)."""
    return page.evaluate("""async ([model, timeout]) => {
        const { GPT2Client } = await import(new URL('client.js', location.href).href);
        return new Promise((resolve) => {
            setTimeout(() => resolve({ type: 'hung' }), timeout);
            GPT2Client.shared().send({ type: 'load', model }, (m) => { if (m.type !== 'progress') resolve(m); });
        });
    }""", [model, timeout])


def next_tokens(page, model: str) -> list[dict]:
    return page.evaluate("""async (model) => {
        const { GPT2Client } = await import(new URL('client.js', location.href).href);
        return new Promise((resolve) => GPT2Client.shared().send(
            { type: 'next', model, prompt: %s, top: 5 }, (m) => resolve(m.tokens ?? m)));
    }""" % json.dumps(PROMPT), model)


def cached_shards(page, model: str) -> list[str]:
    return page.evaluate("""async (model) => {
        const keys = await (await caches.open('gpt2web-shards-v1')).keys();
        return keys.map(r => r.url).filter(u => u.includes('/weights/' + model + '/') && u.endsWith('.bin'));
    }""", model)


def requests_for(faults: Faults, model: str, file: str) -> list[str | None]:
    return [rng for path, rng in faults.log if path == f"/weights/{model}/{file}"]


def assert_like_cpython(page, model, engine):
    got = next_tokens(page, model)
    want = engine.next_tokens(PROMPT, 5)
    assert [t["id"] for t in got] == [t["id"] for t in want]
    for g, w in zip(got, want):
        assert g["prob"] == pytest.approx(w["prob"], rel=1e-4)


def test_cut_downloads_resume_with_a_range_request(page, fault_server, fault_weights, engine):
    ready = load(page, "cut")
    assert ready["type"] == "ready", ready
    for s in manifest_of(fault_weights, "cut")["shards"]:
        tries = requests_for(fault_server, "cut", s["file"])
        # One plain GET cut half-way, then the rest, from where it stopped (Chromium's HTTP
        # cache may check its partial copy with a one-byte range first).
        assert tries[0] is None and len(tries) >= 2, (s["file"], tries)
        starts = {int(re.match(r"bytes=(\d+)-", t).group(1)) for t in tries[1:]}
        assert len(starts) == 1 and 0 < starts.pop() <= s["bytes"] // 2 + 1, tries
    assert_like_cpython(page, "cut", engine)
    assert len(cached_shards(page, "cut")) == len(manifest_of(fault_weights, "cut")["shards"])


def test_a_stalled_download_is_resumed(page, fault_server, fault_weights, engine):
    ready = load(page, "slow")
    assert ready["type"] == "ready", ready
    first = manifest_of(fault_weights, "slow")["shards"][0]["file"]
    tries = requests_for(fault_server, "slow", first)
    assert tries[0] is None and len(tries) >= 2 and all(t.startswith("bytes=") for t in tries[1:]), tries
    assert_like_cpython(page, "slow", engine)


def test_a_server_error_is_retried(page, fault_server, fault_weights, engine):
    ready = load(page, "flaky")
    assert ready["type"] == "ready", ready
    for s in manifest_of(fault_weights, "flaky")["shards"]:
        assert requests_for(fault_server, "flaky", s["file"]) == [None, None], s["file"]
    assert_like_cpython(page, "flaky", engine)


def test_a_truncated_shard_is_named_not_retried_not_cached(page, fault_server, fault_weights):
    shard = manifest_of(fault_weights, "short")["shards"][1]["file"]
    error = load(page, "short")
    assert error["type"] == "error" and error["kind"] == "shard", error
    assert shard in error["message"] and "the file on the server is truncated" in error["message"], error["message"]
    assert requests_for(fault_server, "short", shard) == [None]  # retrying cannot help
    assert all(shard not in u for u in cached_shards(page, "short"))


def test_a_missing_shard_is_named_and_not_retried(page, fault_server, fault_weights):
    present = {p.name for p in (fault_weights / "missing").iterdir()}
    (gone,) = [s["file"] for s in manifest_of(fault_weights, "missing")["shards"] if s["file"] not in present]
    error = load(page, "missing")
    assert error["type"] == "error" and error["kind"] == "shard", error
    assert gone in error["message"] and "404" in error["message"] and "missing" in error["message"], error
    assert requests_for(fault_server, "missing", gone) == [None]


def test_a_corrupt_shard_is_fetched_once_more_then_named_and_never_cached(page, fault_server, fault_weights):
    (bad,) = [p.name for p in (fault_weights / "corrupt").glob("h.0.*.bin")]
    error = load(page, "corrupt")
    assert error["type"] == "error" and error["kind"] == "shard", error
    assert bad in error["message"] and "downloaded twice" in error["message"], error["message"]
    assert requests_for(fault_server, "corrupt", bad) == [None, None]
    assert all(bad not in u for u in cached_shards(page, "corrupt"))


def test_a_model_too_big_for_the_browser_is_refused_before_downloading(page, fault_server):
    error = load(page, "huge")
    assert error["type"] == "error" and error["kind"] == "memory", error
    assert '"huge"' in error["message"] and "GB" in error["message"], error["message"]
    assert not [p for p, _ in fault_server.log if p.startswith("/weights/huge/") and p.endswith(".bin")]


def test_a_full_storage_quota_means_working_without_the_cache(browser, fault_server, engine):
    context = browser.new_context(service_workers="block")
    context.set_default_timeout(30_000)
    warnings: list[str] = []
    context.on("console", lambda m: warnings.append(m.text))
    try:
        page = context.new_page()
        page.goto(fault_server.url + "bench.html")
        cdp = context.new_cdp_session(page)
        cdp.send("Storage.overrideQuotaForOrigin", {"origin": fault_server.url.rstrip("/"), "quotaSize": 1000})
        ready = load(page, "demo")
        assert ready["type"] == "ready", ready
        assert_like_cpython(page, "demo", engine)
        assert cached_shards(page, "demo") == []
        assert any("storage for this site is full" in w for w in warnings), warnings
    finally:
        context.close()


def test_without_simd_the_numpy_path_runs_and_says_so(playwright, fault_server, engine):
    # V8 offers WebAssembly SIMD only with SSE4.1: without it, this Chromium has none.
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS + ["--js-flags=--no-enable-sse4-1"])
    try:
        context = browser.new_context(service_workers="block")
        context.set_default_timeout(30_000)
        page = context.new_page()
        page.goto(fault_server.url)
        note = page.locator("#device-note")
        assert note.is_visible() and "no WebAssembly SIMD" in note.inner_text()
        ready = load(page, "demo")
        assert ready["type"] == "ready", ready
        assert ready["backend"].startswith("numpy"), ready["backend"]
        assert_like_cpython(page, "demo", engine)
    finally:
        browser.close()
