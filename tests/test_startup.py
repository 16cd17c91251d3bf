"""Start-up from the interpreter snapshot (scripts/make_snapshot.mjs, scripts/setup_runtime.py,
web/runtime.js).

Set-up side (quick, no browser): the snapshot step is skipped when its files match, rebuilt
when they do not, and never fatal (no Node, a failed build: a warning, stale files removed).
Page side (real Chromium, real server, the fixtures of conftest.py): a page boots from the
snapshot the set-up step built, its int8 kernels find the restored memory, and it generates
what CPython does; a corrupt download, a snapshot of another wasm, and an image Pyodide
refuses each fall back to a plain start that still generates, saying why.

Run:  PYTHONPATH=py nice -n 10 python3 -m pytest -q tests/test_startup.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import setup_runtime  # noqa: E402
from setup_runtime import CORE_SHA256, ensure_snapshot, snapshot_problem  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PROMPT = "I wish you a happy New"
try:
    import playwright  # noqa: F401
    HAVE_PLAYWRIGHT = True
except ImportError:
    HAVE_PLAYWRIGHT = False
needs_browser = pytest.mark.skipif(not HAVE_PLAYWRIGHT or not Path(CHROMIUM).exists(),
                                   reason="needs playwright and /usr/bin/chromium")


def test_page_pins_the_same_wasm_as_the_setup_step():
    """runtime.js refuses snapshots of any other pyodide.asm.wasm: its pin must be the set-up's."""
    text = (REPO / "web" / "runtime.js").read_text()
    (pinned,) = re.findall(r'PYODIDE_WASM_SHA256 = "([0-9a-f]{64})"', text)
    assert pinned == CORE_SHA256["pyodide.asm.wasm"]


def _fake_snapshot(folder: Path, **changes) -> Path:
    """A snapshot.json + snapshot.bin + numpy.tar.gz that snapshot_problem accepts, with
    `changes` to the json."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    data = b"\x1f\x8b not really a snapshot"
    bundle = b"\x1f\x8b not really a bundle"
    (folder / "snapshot.bin").write_bytes(data)
    (folder / "numpy.tar.gz").write_bytes(bundle)
    meta = {"format": 1, "wasm_sha256": CORE_SHA256["pyodide.asm.wasm"],
            "maker_sha256": setup_runtime.sha256_file(setup_runtime.MAKE_SNAPSHOT),
            "file_sha256": hashlib.sha256(data).hexdigest(), "file_bytes": len(data),
            "numpy": {"file": "numpy.tar.gz", "file_sha256": hashlib.sha256(bundle).hexdigest(),
                      "file_bytes": len(bundle)}, **changes}
    (folder / "snapshot.json").write_text(json.dumps(meta))
    return folder


def test_snapshot_problem_names_what_does_not_match(tmp_path):
    assert snapshot_problem(tmp_path / "empty") == "not built"
    assert snapshot_problem(_fake_snapshot(tmp_path / "ok")) is None
    assert "another pyodide.asm.wasm" in snapshot_problem(_fake_snapshot(tmp_path / "a", wasm_sha256="0" * 64))
    assert "make_snapshot.mjs" in snapshot_problem(_fake_snapshot(tmp_path / "b", maker_sha256="0" * 64))
    assert "format" in snapshot_problem(_fake_snapshot(tmp_path / "c", format=0))
    bad = _fake_snapshot(tmp_path / "d")
    (bad / "snapshot.bin").write_bytes(b"other bytes")
    assert "does not match" in snapshot_problem(bad)
    assert "no numpy bundle" in snapshot_problem(_fake_snapshot(tmp_path / "e", numpy=None))
    bad = _fake_snapshot(tmp_path / "f")
    (bad / "numpy.tar.gz").write_bytes(b"other bytes")
    assert snapshot_problem(bad) == "numpy.tar.gz does not match snapshot.json"
    (bad / "numpy.tar.gz").unlink()
    assert snapshot_problem(bad) == "numpy.tar.gz does not match snapshot.json"


def test_matching_snapshot_is_left_alone(tmp_path, monkeypatch):
    folder = _fake_snapshot(tmp_path / "rt")
    monkeypatch.setattr(setup_runtime.subprocess, "run", lambda *a, **k: pytest.fail("rebuilt"))
    assert ensure_snapshot(folder, quiet=True) is True


def test_without_node_the_setup_warns_and_removes_a_stale_snapshot(tmp_path, monkeypatch, capsys):
    folder = _fake_snapshot(tmp_path / "rt", wasm_sha256="0" * 64)
    monkeypatch.setattr(setup_runtime.shutil, "which", lambda name: None)
    assert ensure_snapshot(folder, quiet=True) is False
    assert not any((folder / name).exists() for name in ("snapshot.json", "snapshot.bin", "numpy.tar.gz"))
    err = capsys.readouterr().err
    assert "warning: no interpreter snapshot (node not found)" in err and "plain way" in err


def test_failed_build_warns_with_its_reason(tmp_path, capsys):
    """A folder without the runtime: make_snapshot.mjs fails, the set-up says why and carries on."""
    if setup_runtime._node()[0] is None:
        pytest.skip("node not installed")
    folder = tmp_path / "rt"
    folder.mkdir()
    assert ensure_snapshot(folder, quiet=True) is False
    err = capsys.readouterr().err
    assert "make_snapshot: failed:" in err and "plain way" in err
    assert list(folder.iterdir()) == []


# --------------------------------------------------------------------------- in the browser


def _snapshot_or_skip(web_build) -> tuple[bytes, dict]:
    """The snapshot the set-up step built (web_build runs it): (snapshot.bin bytes, snapshot.json)."""
    runtime = web_build / "runtime"
    problem = snapshot_problem(runtime)
    if problem is not None:
        node, why = setup_runtime._node()
        if node is None:
            pytest.skip(f"no interpreter snapshot: {why}")
        pytest.fail(f"the set-up step has Node but built no usable snapshot: {problem}")
    return (runtime / "snapshot.bin").read_bytes(), json.loads((runtime / "snapshot.json").read_text())


def _request(page, message: dict) -> list[dict]:
    """Send one protocol message through the page's own worker client; collect the answers."""
    return page.evaluate("""async (message) => {
        const { GPT2Client } = await import('/client.js');
        const answers = [];
        return new Promise((resolve) => GPT2Client.shared().send(message, (m) => {
            answers.push(m);
            if (['done', 'error', 'ready', 'next'].includes(m.type)) resolve(answers);
        }));
    }""", message)


def _generates_like_cpython(page, engine):
    from gpt2web.sampling import SamplingParams

    answers = _request(page, {"type": "generate", "id": "gen", "model": "demo", "prompt": PROMPT,
                              "temperature": 1, "top_k": 0, "top_p": 1, "seed": 3, "max_tokens": 5,
                              "candidates": 10})
    assert answers[-1]["type"] == "done", answers[-1]
    expected = list(engine.generate(PROMPT, SamplingParams(1, 0, 1, 3), max_tokens=5, n_candidates=10))
    assert [a["token_id"] for a in answers if a["type"] == "token"] == [s["id"] for s in expected]


def _open(browser, server, routes=()):
    context = browser.new_context(service_workers="block")
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    for pattern, handler in routes:
        context.route(pattern, handler)
    page = context.new_page()
    page.on("pageerror", lambda e: print("pageerror:", e))
    page.goto(server, wait_until="domcontentloaded")
    return context, page, requests


@pytest.mark.browser
@needs_browser
def test_page_boots_from_the_snapshot(browser, server, web_build, engine):
    _snapshot_or_skip(web_build)
    context, page, requests = _open(browser, server)
    try:
        ready = _request(page, {"type": "load", "model": "demo"})[-1]
        assert ready["type"] == "ready", ready
        info = ready["boot_info"]
        assert ready["boot"] == info["boot"] == "snapshot", info
        assert info["fallback"] is None
        ms = info["ms"]
        assert 0 < ms["snapshot_image"] <= ms["interpreter"] <= ms["numpy"] <= ms["engine"] <= ms["total"], ms
        assert ms["numpy_bundle"] <= ms["numpy_files"] <= ms["numpy"], ms
        assert sum(u.endswith("/runtime/snapshot.bin") for u in requests) == 1
        # numpy came from the bundle, with its bytecode; its wheel was never downloaded.
        assert info["numpy"] == "bundle" and info["numpy_fallback"] is None, info
        assert sum(u.endswith("/runtime/numpy.tar.gz") for u in requests) == 1
        assert not any(u.endswith(".whl") and "/runtime/" in u for u in requests), requests
        # The int8 kernels found Pyodide's memory in the restored interpreter.
        ready = _request(page, {"type": "load", "model": "int8"})[-1]
        assert ready["backend"] == "wasm-simd128-int8", ready
        _generates_like_cpython(page, engine)
    finally:
        context.close()


def _bad_snapshot(case: str, packed: bytes, meta: dict) -> tuple[dict, bytes]:
    """(snapshot.json, snapshot.bin) to serve for `case`."""
    import gzip
    import hashlib

    if case == "corrupt-download":  # a byte changed on the way: inflating or the sha256 fails
        data = bytearray(packed)
        data[len(data) // 2] ^= 0xFF
        return meta, bytes(data)
    if case == "other-wasm":  # made from another pyodide.asm.wasm
        return {**meta, "wasm_sha256": "0" * 64}, packed
    # "refused-by-pyodide": passes every check of the page; Pyodide's restore throws.
    image = bytearray(gzip.decompress(packed))
    image[0] ^= 0xFF  # the snapshot's magic number
    repacked = gzip.compress(bytes(image), 1)
    return {**meta, "snapshot_sha256": hashlib.sha256(image).hexdigest(),
            "file_sha256": hashlib.sha256(repacked).hexdigest(), "file_bytes": len(repacked)}, repacked


@pytest.mark.browser
@needs_browser
@pytest.mark.parametrize("case, reason", [
    ("corrupt-download", "the image"),
    ("other-wasm", "another pyodide.asm.wasm"),
    ("refused-by-pyodide", "restoring the snapshot failed"),
])
def test_bad_snapshot_falls_back_to_a_plain_start(browser, server, web_build, engine, case, reason):
    packed, meta = _snapshot_or_skip(web_build)
    served_meta, served_bin = _bad_snapshot(case, packed, meta)
    context, page, _ = _open(browser, server, _serving(served_meta, "snapshot.bin", served_bin))
    try:
        ready = _request(page, {"type": "load", "model": "demo"})[-1]
        assert ready["type"] == "ready", ready
        assert ready["boot"] == "plain", ready["boot_info"]
        assert reason in ready["boot_info"]["fallback"], ready["boot_info"]
        _generates_like_cpython(page, engine)
    finally:
        context.close()


def _serving(meta: dict, name: str, body: bytes) -> list:
    """Routes that answer runtime/snapshot.json with `meta` and runtime/`name` with `body`."""
    return [
        ("**/runtime/snapshot.json", lambda route: route.fulfill(
            status=200, body=json.dumps(meta), headers={"Content-Type": "application/json"})),
        (f"**/runtime/{name}", lambda route: route.fulfill(
            status=200, body=body, headers={"Content-Type": "application/octet-stream"})),
    ]


def _tar_gz(files: dict[str, bytes], folders: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """(tar, gzip of it) holding `files` (and `folders`), as make_snapshot.mjs writes the
    numpy bundle."""
    import gzip
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in folders:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), gzip.compress(buf.getvalue(), 6)


def _bad_bundle(case: str, web_build) -> tuple[dict, bytes]:
    """(snapshot.json, numpy.tar.gz) to serve for `case`."""
    import hashlib

    runtime = web_build / "runtime"
    meta = json.loads((runtime / "snapshot.json").read_text())
    packed = (runtime / "numpy.tar.gz").read_bytes()
    if case == "corrupt-bundle":  # a byte changed on the way
        data = bytearray(packed)
        data[len(data) // 2] ^= 0xFF
        return meta, bytes(data)
    if case == "other-wheel":  # made from another numpy wheel than the lock file pins
        return {**meta, "numpy": {**meta["numpy"], "wheel_sha256": "0" * 64}}, packed
    # "numpy-fails": passes every check of the page, but its numpy does not import.
    tar, packed = _tar_gz({"numpy/__init__.py": b"raise ImportError('broken on purpose')\n"})
    bundle = {**meta["numpy"], "tar_sha256": hashlib.sha256(tar).hexdigest(), "tar_bytes": len(tar),
              "file_sha256": hashlib.sha256(packed).hexdigest(), "file_bytes": len(packed)}
    return {**meta, "numpy": bundle}, packed


@pytest.mark.browser
@needs_browser
@pytest.mark.parametrize("case, boot, reason", [
    ("corrupt-bundle", "snapshot", "the numpy bundle is corrupt"),
    ("other-wheel", "snapshot", "another wheel"),
    ("numpy-fails", "plain", "broken on purpose"),
])
def test_bad_numpy_bundle_falls_back_to_the_wheel(browser, server, web_build, engine, case, boot, reason):
    _snapshot_or_skip(web_build)
    served_meta, served_bundle = _bad_bundle(case, web_build)
    context, page, requests = _open(browser, server, _serving(served_meta, "numpy.tar.gz", served_bundle))
    try:
        ready = _request(page, {"type": "load", "model": "demo"})[-1]
        assert ready["type"] == "ready", ready
        info = ready["boot_info"]
        # A bundle that never made it into Python costs nothing else; one whose numpy fails
        # also costs the restored interpreter (numpy may be half-imported in it).
        assert info["boot"] == boot and info["numpy"] == "wheel", info
        assert reason in info["numpy_fallback"], info
        assert any(u.endswith(".whl") and "/runtime/numpy-" in u for u in requests), requests
        _generates_like_cpython(page, engine)
    finally:
        context.close()


@pytest.mark.browser
@needs_browser
def test_image_that_fails_its_check_after_pyodide_took_it(browser, server, web_build, engine):
    """Pyodide gets the image's buffer before the image is in (it compiles meanwhile): an
    image that fails its check only then must still never be restored. Served inflated (as
    with Content-Encoding: gzip) with one byte changed: the buffer fills up completely, and
    only the sha256 check can tell."""
    import gzip

    packed, meta = _snapshot_or_skip(web_build)
    data = bytearray(gzip.decompress(packed))
    data[len(data) // 2] ^= 0xFF

    def slow_image(route):
        route.request.frame.page.wait_for_timeout(2500)  # well after Pyodide has asked for it
        route.fulfill(status=200, body=bytes(data), headers={"Content-Type": "application/octet-stream"})

    context, page, _ = _open(browser, server, [("**/runtime/snapshot.bin", slow_image)])
    try:
        ready = _request(page, {"type": "load", "model": "demo"})[-1]
        assert ready["type"] == "ready", ready
        info = ready["boot_info"]
        assert info["boot"] == "plain", info
        assert "the image is corrupt" in info["fallback"], info
        # The failure was found while Pyodide waited in its fsInit hook, not before it asked.
        assert info["ms"]["snapshot_wanted"] <= info["ms"]["wasm_ready"] <= info["ms"]["interpreter"], info
        _generates_like_cpython(page, engine)
    finally:
        context.close()


# --------------------------------------------------------------------------- untar (Node)


def test_untar_reads_what_make_snapshot_writes(tmp_path):
    """web/runtime.js's tar reader, under Node, on archives from Python's tarfile (USTAR)."""
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed")
    long_name = "numpy/" + "/".join(["deep" * 6] * 6) + "/module.cpython-312.pyc"  # > 100 chars
    assert 100 < len(long_name) < 250
    files = {"numpy/__init__.py": b"x = 1\n", long_name: bytes(range(256)) * 3, "numpy/empty.txt": b""}
    good, _ = _tar_gz(files, folders=("numpy", "numpy/sub"))
    escaping, _ = _tar_gz({"numpy/../../etc/passwd": b"no"})
    (tmp_path / "good.tar").write_bytes(good)
    (tmp_path / "escaping.tar").write_bytes(escaping)
    script = """
        const fs = await import("node:fs");
        const { untar } = await import(process.argv[1]);
        const read = (name) => new Uint8Array(fs.readFileSync(process.argv[2] + "/" + name));
        const files = untar(read("good.tar")).map(({ path, bytes }) => [path, Buffer.from(bytes).toString("hex")]);
        let refused = null;
        try { untar(read("escaping.tar")); } catch (e) { refused = e.message; }
        console.log(JSON.stringify({ files, refused }));
    """
    out = subprocess.run([node, "--input-type=module", "-e", script, (REPO / "web" / "runtime.js").as_uri(),
                          str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert dict(result["files"]) == {name: data.hex() for name, data in files.items()}
    assert "refusing the path" in result["refused"]


def test_sha256_without_webcrypto_matches_hashlib():
    """web/download.js's own SHA-256 (for pages without WebCrypto), under Node, on lengths
    around the padding boundaries and on a few MB."""
    import hashlib
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed")
    lengths = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 100_003, 3_000_001]
    script = """
        const { sha256 } = await import(process.argv[1]);
        const out = JSON.parse(process.argv[2]).map((n) => {
          const b = new Uint8Array(n);
          for (let i = 0; i < n; i++) b[i] = (i * 2654435761) >>> 24;
          return Buffer.from(sha256(b)).toString("hex");
        });
        console.log(JSON.stringify(out));
    """
    out = subprocess.run([node, "--input-type=module", "-e", script, (REPO / "web" / "download.js").as_uri(),
                          json.dumps(lengths)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    want = [hashlib.sha256(bytes((i * 2654435761 % 2**32) >> 24 for i in range(n))).hexdigest() for n in lengths]
    assert json.loads(out.stdout) == want


@pytest.mark.browser
@needs_browser
def test_page_works_without_webcrypto_on_a_plain_http_lan_address(server, engine):
    """Served over http under a name that is not localhost (a classroom demo on a LAN), the page
    is not a secure context: no WebCrypto, no Cache Storage. It must still load and generate."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    from playwright.sync_api import sync_playwright

    from gpt2web.host.chromium import CHROMIUM, CHROMIUM_ARGS

    port = urlsplit(server).port

    def run():  # a browser of its own: the name must resolve to the test server
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                   args=CHROMIUM_ARGS + ["--host-resolver-rules=MAP gpt2web-lan.test 127.0.0.1"])
            try:
                page = b.new_page()
                page.goto(f"http://gpt2web-lan.test:{port}/", wait_until="domcontentloaded")
                secure = page.evaluate("[isSecureContext, !!(self.crypto && crypto.subtle)]")
                _generates_like_cpython(page, engine)  # the whole boot, the model, a generation
                return secure
            finally:
                b.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API, away from pytest's event loop
        assert pool.submit(run).result() == [False, False]
