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
    """A snapshot.json + snapshot.bin that snapshot_problem accepts, with `changes` to the json."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    data = b"\x1f\x8b not really a snapshot"
    (folder / "snapshot.bin").write_bytes(data)
    meta = {"format": 1, "wasm_sha256": CORE_SHA256["pyodide.asm.wasm"],
            "maker_sha256": setup_runtime.sha256_file(setup_runtime.MAKE_SNAPSHOT),
            "file_sha256": hashlib.sha256(data).hexdigest(), "file_bytes": len(data), **changes}
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


def test_matching_snapshot_is_left_alone(tmp_path, monkeypatch):
    folder = _fake_snapshot(tmp_path / "rt")
    monkeypatch.setattr(setup_runtime.subprocess, "run", lambda *a, **k: pytest.fail("rebuilt"))
    assert ensure_snapshot(folder, quiet=True) is True


def test_without_node_the_setup_warns_and_removes_a_stale_snapshot(tmp_path, monkeypatch, capsys):
    folder = _fake_snapshot(tmp_path / "rt", wasm_sha256="0" * 64)
    monkeypatch.setattr(setup_runtime.shutil, "which", lambda name: None)
    assert ensure_snapshot(folder, quiet=True) is False
    assert not (folder / "snapshot.json").exists() and not (folder / "snapshot.bin").exists()
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
        assert sum(u.endswith("/runtime/snapshot.bin") for u in requests) == 1
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
    return {**meta, "snapshot_sha256": hashlib.sha256(image).hexdigest()}, gzip.compress(bytes(image), 1)


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
    routes = [
        ("**/runtime/snapshot.json", lambda route: route.fulfill(
            status=200, body=json.dumps(served_meta), headers={"Content-Type": "application/json"})),
        ("**/runtime/snapshot.bin", lambda route: route.fulfill(
            status=200, body=served_bin, headers={"Content-Type": "application/octet-stream"})),
    ]
    context, page, _ = _open(browser, server, routes)
    try:
        ready = _request(page, {"type": "load", "model": "demo"})[-1]
        assert ready["type"] == "ready", ready
        assert ready["boot"] == "plain", ready["boot_info"]
        assert reason in ready["boot_info"]["fallback"], ready["boot_info"]
        _generates_like_cpython(page, engine)
    finally:
        context.close()
