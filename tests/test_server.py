"""The static server: right files, right headers, nothing outside the served folders.

Fixture trees are built in temp folders; no real weights or runtime are needed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import threading
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from gpt2web.host.server import IMMUTABLE, cache_control_for, create_app

REPO = Path(__file__).resolve().parent.parent
SHARD = "h.0.3fa9c0d1e2b3a4f5.bin"
SHARD_BYTES = bytes(range(256)) * 40  # 10,240 bytes
SECRET = b"TOP-SECRET-do-not-serve"


def make_site(root: Path) -> Path:
    """A small project tree: web/ (page, worker, runtime, wheels), weights/, and secrets outside."""
    web, weights = root / "web", root / "weights"
    (web / "runtime").mkdir(parents=True)
    (web / "wheels").mkdir()
    (web / "index.html").write_text("<!doctype html><title>gpt2web</title>")
    (web / "worker.js").write_text("self.onmessage = () => {};\n")
    (web / "runtime" / "pyodide.mjs").write_text("export const x = 1;\n")
    (web / "runtime" / "pyodide.asm.wasm").write_bytes(b"\0asm\1\0\0\0")
    (web / "runtime" / "python_stdlib.zip").write_bytes(b"PK\5\6" + b"\0" * 18)
    (web / "runtime" / "pyodide-lock.json").write_text('{"info": {}}')
    (web / "wheels" / "gpt2web-0.1.0-py3-none-any.whl").write_bytes(b"PK\5\6" + b"\0" * 18)
    (web / "wheels" / "index.json").write_text('{"wheel": "gpt2web-0.1.0-py3-none-any.whl"}')
    (web / ".hidden").write_bytes(SECRET)

    gpt2 = weights / "gpt2"
    gpt2.mkdir(parents=True)
    (gpt2 / SHARD).write_bytes(SHARD_BYTES)
    (gpt2 / "manifest.json").write_text(json.dumps({
        "name": "gpt2", "dtype": "int8",
        "config": {"n_layer": 12, "n_embd": 768, "n_head": 12},
        "shards": [{"file": SHARD, "bytes": len(SHARD_BYTES)}],
    }))
    (weights / "no-manifest").mkdir()
    (weights / "no-manifest" / "x.bin").write_bytes(b"1")
    (weights / "broken").mkdir()
    (weights / "broken" / "manifest.json").write_text("{not json")
    (weights / "gpt2.tiktoken").write_text("IQ== 0\n")

    # Things that must never be reachable.
    (root / "secret.txt").write_bytes(SECRET)
    outside = root.parent / (root.name + "-outside")
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    os.symlink(root / "secret.txt", web / "leak.txt")
    os.symlink(outside, web / "linkdir")
    os.symlink(outside / "secret.txt", weights / "gpt2" / "leak.bin")
    os.symlink(web / "worker.js", web / "alias.js")  # a link that stays inside: fine
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return make_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def client(site) -> TestClient:
    return TestClient(create_app(site))


def asgi_get(app, raw_path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    """Call the app with a raw request target, decoded the way uvicorn decodes it.

    (httpx would normalise '..' away before the request is sent.)
    """
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": unquote(raw_path),
        "raw_path": raw_path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }
    out: dict = {"status": None, "headers": {}, "body": b""}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    # A fresh event loop in a thread of its own: browser tests in the same session leave
    # Playwright's loop running on the main thread, where asyncio.run() refuses to start.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    return out["status"], out["headers"], out["body"]


# --------------------------------------------------------------------------- files and types


def test_root_serves_index_html(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.text.startswith("<!doctype html>")
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["etag"] and r.headers["last-modified"]
    assert client.get("/index.html").content == r.content


@pytest.mark.parametrize("url, mime", [
    ("/runtime/pyodide.asm.wasm", "application/wasm"),
    ("/runtime/pyodide.mjs", "text/javascript"),
    ("/worker.js", "text/javascript"),
    ("/runtime/pyodide-lock.json", "application/json"),
    ("/runtime/python_stdlib.zip", "application/zip"),
    ("/wheels/gpt2web-0.1.0-py3-none-any.whl", "application/zip"),
    ("/wheels/index.json", "application/json"),
    (f"/weights/gpt2/{SHARD}", "application/octet-stream"),
    ("/weights/gpt2/manifest.json", "application/json"),
    ("/weights/gpt2.tiktoken", "text/plain"),
])
def test_mime_types(client, url, mime):
    r = client.get(url)
    assert r.status_code == 200, url
    assert r.headers["content-type"].split(";")[0] == mime


def test_head_sends_headers_only(client):
    r = client.head(f"/weights/gpt2/{SHARD}")
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(SHARD_BYTES))
    assert r.headers["accept-ranges"] == "bytes"
    assert r.content == b""


def test_other_methods_are_refused(client):
    assert client.post("/worker.js").status_code == 405
    assert client.put(f"/weights/gpt2/{SHARD}", content=b"x").status_code == 405


# --------------------------------------------------------------------------- ranges


def test_range_request_returns_206_with_the_slice(client):
    r = client.get(f"/weights/gpt2/{SHARD}", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 100-199/{len(SHARD_BYTES)}"
    assert r.content == SHARD_BYTES[100:200]
    assert r.headers["cache-control"] == IMMUTABLE


def test_open_and_suffix_ranges(client):
    n = len(SHARD_BYTES)
    r = client.get(f"/weights/gpt2/{SHARD}", headers={"Range": f"bytes={n - 10}-"})
    assert r.status_code == 206 and r.content == SHARD_BYTES[-10:]
    r = client.get(f"/weights/gpt2/{SHARD}", headers={"Range": "bytes=-16"})
    assert r.status_code == 206 and r.content == SHARD_BYTES[-16:]
    assert r.headers["content-range"] == f"bytes {n - 16}-{n - 1}/{n}"


def test_unsatisfiable_range_is_416(client):
    n = len(SHARD_BYTES)
    r = client.get(f"/weights/gpt2/{SHARD}", headers={"Range": f"bytes={n}-{n + 10}"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{n}"
    assert r.headers["access-control-allow-origin"] == "*"


def test_if_range_gives_full_file_when_stale(client):
    url = f"/weights/gpt2/{SHARD}"
    etag = client.head(url).headers["etag"]
    r = client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert r.status_code == 206 and r.content == SHARD_BYTES[:10]
    r = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == SHARD_BYTES


# --------------------------------------------------------------------------- caching


@pytest.mark.parametrize("name, immutable", [
    ("h.0.3fa9c0d1e2b3a4f5.bin", True),
    ("wte.0123456789abcdef0123.bin", True),
    ("chunk-3FA9C0D1E2B3A4F5.js", True),
    ("h.0.3fa9c0d1e2b3a4f.bin", False),  # 15 hex digits: not a content hash
    ("manifest.json", False),
    ("pyodide.asm.wasm", False),
    ("numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl", False),
])
def test_cache_policy_by_name(name, immutable):
    assert (cache_control_for(name) == IMMUTABLE) is immutable


@pytest.mark.parametrize("url, expected", [
    (f"/weights/gpt2/{SHARD}", IMMUTABLE),
    ("/weights/gpt2/manifest.json", "no-cache"),
    ("/models.json", "no-cache"),
    ("/", "no-cache"),
    ("/runtime/pyodide.asm.wasm", "no-cache"),
    ("/wheels/index.json", "no-cache"),
])
def test_cache_control_headers(client, url, expected):
    r = client.get(url)
    assert r.status_code == 200
    assert r.headers["cache-control"] == expected


def test_revalidation_with_etag_and_last_modified(client):
    url = "/weights/gpt2/manifest.json"
    first = client.get(url)
    r = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["etag"] == first.headers["etag"]
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["access-control-allow-origin"] == "*"
    r = client.get(url, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert r.status_code == 304
    r = client.get(url, headers={"If-Modified-Since": formatdate(0, usegmt=True)})
    assert r.status_code == 200
    r = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert r.status_code == 200 and r.content == first.content


def test_models_json_revalidates(client):
    first = client.get("/models.json")
    r = client.get("/models.json", headers={"If-None-Match": first.headers["etag"]})
    assert r.status_code == 304


# --------------------------------------------------------------------------- models.json


def test_models_json_lists_models_with_a_manifest(client):
    r = client.get("/models.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    models = r.json()["models"]
    assert [m["id"] for m in models] == ["gpt2"]  # no manifest / broken manifest: skipped
    (m,) = models
    assert m["name"] == "gpt2" and m["dtype"] == "int8"
    assert m["size"] == len(SHARD_BYTES)
    assert (m["n_layer"], m["n_embd"]) == (12, 768)
    assert client.get(m["manifest"]).status_code == 200


def test_models_json_without_weights_folder(tmp_path):
    (tmp_path / "web").mkdir()
    r = TestClient(create_app(tmp_path)).get("/models.json")
    assert r.status_code == 200 and r.json() == {"models": []}


# --------------------------------------------------------------------------- CORS / isolation


def test_cors_on_every_response(client):
    for url in ["/", "/models.json", f"/weights/gpt2/{SHARD}", "/missing.js"]:
        assert client.get(url).headers["access-control-allow-origin"] == "*", url
    r = client.get(f"/weights/gpt2/{SHARD}", headers={"Origin": "https://blog.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "Content-Range" in r.headers["access-control-expose-headers"]


def test_cors_preflight(client):
    r = client.options(f"/weights/gpt2/{SHARD}", headers={
        "Origin": "https://blog.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "Range" in r.headers["access-control-allow-headers"]


def test_isolation_headers_only_when_asked(site, client):
    plain = client.get("/")
    assert "cross-origin-embedder-policy" not in plain.headers
    isolated = TestClient(create_app(site, isolate=True))
    for url in ["/", "/runtime/pyodide.asm.wasm", f"/weights/gpt2/{SHARD}", "/nope"]:
        h = isolated.get(url).headers
        assert h["cross-origin-opener-policy"] == "same-origin"
        assert h["cross-origin-embedder-policy"] == "require-corp"
        assert h["cross-origin-resource-policy"] == "cross-origin"
        assert h["access-control-allow-origin"] == "*"


# --------------------------------------------------------------------------- confinement


@pytest.mark.parametrize("url", [
    "/runtime", "/runtime/", "/wheels/", "/weights", "/weights/", "/weights/gpt2", "/weights/gpt2/",
    "/missing.html", "/weights/gpt2/missing.bin",
])
def test_directories_and_missing_files_are_404(client, url):
    r = client.get(url)
    assert r.status_code == 404
    assert "runtime" not in r.text and "pyodide" not in r.text


@pytest.mark.parametrize("raw", [
    "/../secret.txt",
    "/runtime/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/runtime%2f..%2f..%2fsecret.txt",
    "/weights/..%2F..%2Fsecret.txt",
    "/weights/../secret.txt",
    "/..%5csecret.txt",
    "//etc/passwd",
    "/%2Fetc%2Fpasswd",
    "/weights//etc/passwd",
    "/weights/%2fetc%2fpasswd",
    "/%00secret.txt",
    "/leak.txt",                # symlink to a file outside web/
    "/linkdir/secret.txt",      # symlink to a folder outside web/
    "/weights/gpt2/leak.bin",   # symlink out of weights/
    "/.hidden",
    "/./worker.js",
])
def test_nothing_outside_the_served_folders(site, raw):
    app = create_app(site)
    status, headers, body = asgi_get(app, raw)
    assert status == 404, (raw, status)
    assert SECRET not in body and b"root:" not in body
    assert headers["access-control-allow-origin"] == "*"


def test_symlink_inside_the_folder_is_served(client):
    r = client.get("/alias.js")
    assert r.status_code == 200 and "onmessage" in r.text


# --------------------------------------------------------------------------- the real server


class _LineReader:
    def __init__(self, stream):
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self.lines.append(line)
            self.ready.set()
        self.ready.set()


def _raw_request(port: int, target: str, headers: dict | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", target, skip_accept_encoding=True)  # target sent verbatim
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    resp.body = resp.read()
    conn.close()
    return resp


def test_real_uvicorn_server_on_a_free_port(tmp_path):
    root = make_site(tmp_path / "site")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "py"), os.environ.get("PYTHONPATH", "")]))
    code = "import sys; from gpt2web.host.server import serve; serve(sys.argv[1], port=0)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        reader = _LineReader(proc.stdout)
        assert reader.ready.wait(30), "server printed nothing"
        line = reader.lines[0].strip()
        assert line.startswith("Serving gpt2web at http://127.0.0.1:"), reader.lines
        port = int(line.rsplit(":", 1)[1].rstrip("/"))
        assert port != 0

        r = _raw_request(port, f"/weights/gpt2/{SHARD}", {"Range": "bytes=1000-1999"})
        assert r.status == 206
        assert r.getheader("Content-Range") == f"bytes 1000-1999/{len(SHARD_BYTES)}"
        assert r.body == SHARD_BYTES[1000:2000]
        assert r.getheader("Cache-Control") == IMMUTABLE
        assert r.getheader("Content-Type") == "application/octet-stream"
        assert r.getheader("Access-Control-Allow-Origin") == "*"
        assert r.getheader("Accept-Ranges") == "bytes"

        r = _raw_request(port, "/runtime/pyodide.asm.wasm")
        assert r.status == 200 and r.getheader("Content-Type") == "application/wasm"
        assert r.body == b"\0asm\1\0\0\0"
        assert r.getheader("Cache-Control") == "no-cache"
        r2 = _raw_request(port, "/runtime/pyodide.asm.wasm", {"If-None-Match": r.getheader("ETag")})
        assert r2.status == 304

        r = _raw_request(port, "/")
        assert r.status == 200 and b"gpt2web" in r.body

        for target in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2f..%2fetc%2fpasswd",
                       "/weights/%2e%2e/secret.txt", "/leak.txt", "/runtime/"]:
            r = _raw_request(port, target)
            assert r.status in (400, 404), target
            assert SECRET not in r.body
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
