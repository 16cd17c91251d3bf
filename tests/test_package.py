"""The installable package: a wheel built with pip carries the app, the kernels and the demo
model, and `gpt2web serve` / `export` work from a fresh venv in an empty folder.

The fresh venv installs the wheel and its dependencies with pip (PyPI or pip's cache). Its
Pyodide runtime cache (GPT2WEB_CACHE) is a temp folder seeded with the checkout's verified
runtime, as a first run would leave it after fetching.

Run:  .venv/bin/python -m pytest -q tests/test_package.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "py"))

from gpt2web.host import runtime  # noqa: E402


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                 "-q", "-w", str(out)])
    assert proc.returncode == 0, proc.stderr
    (whl,) = out.glob("gpt2web-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh venv with the wheel and nothing else (no extras) installed."""
    d = tmp_path_factory.mktemp("venv")
    base = getattr(sys, "_base_executable", sys.executable)
    proc = _run([base, "-m", "venv", str(d)])
    assert proc.returncode == 0, proc.stderr
    proc = _run([str(d / "bin" / "pip"), "install", "-q", str(wheel)])
    assert proc.returncode == 0, proc.stderr
    return d


@pytest.fixture(scope="module")
def seeded_cache(tmp_path_factory) -> Path:
    """A runtime cache as the first `serve` leaves it: the pinned files (and the snapshot)."""
    src = REPO / "web" / "runtime"
    if runtime.check_runtime(src):
        pytest.skip("the checkout's runtime is not set up: run python3 scripts/setup_runtime.py")
    cache = tmp_path_factory.mktemp("cache")
    dest = cache / f"pyodide-{runtime.PYODIDE_VERSION}"
    shutil.copytree(src, dest)
    return cache


def test_wheel_carries_the_app_the_kernels_and_the_demo_model(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "gpt2web/_data/"
    for f in ("web/index.html", "web/widget.js", "web/worker.js", "web/bars.js", "web/kernels/int8.wasm",
              "web/wheels/index.json", "weights/gpt2.tiktoken", "weights/demo/manifest.json",
              "scripts/make_snapshot.mjs"):
        assert data + f in names, f
    manifest = json.loads((REPO / "weights" / "demo" / "manifest.json").read_text())
    for shard in manifest["shards"]:
        assert f"{data}weights/demo/{shard['file']}" in names
    # The runtime is fetched into the user's cache, never shipped in the wheel.
    assert not any(n.startswith(data + "web/runtime/") for n in names)
    index = json.loads(zipfile.ZipFile(wheel).read(data + "web/wheels/index.json"))
    assert data + "web/wheels/" + index["wheel"] in names


def test_serve_without_the_host_extra_says_what_to_install(venv, tmp_path):
    proc = _run([str(venv / "bin" / "gpt2web"), "serve", "--port", "0"], cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "pip install 'gpt2web[host]'" in lines[0]
    proc = _run([str(venv / "bin" / "python"), "-c", "import gpt2web.notebook"], cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "anywidget is not installed: pip install 'gpt2web[notebook]'")


def _get(url: str) -> tuple[int, bytes, dict]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.status, resp.read(), dict(resp.headers)


def test_serve_and_export_from_an_empty_folder(venv, wheel, seeded_cache, tmp_path):
    proc = _run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[host]"])
    assert proc.returncode == 0, proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    env = dict(os.environ, GPT2WEB_CACHE=str(seeded_cache))
    env.pop("PYTHONPATH", None)
    gpt2web = str(venv / "bin" / "gpt2web")

    # The installed CLI reads the demo model from the package.
    proc = _run([gpt2web, "next", "In the beginning", "--top", "3", "--json"], cwd=empty, env=env)
    assert proc.returncode == 0, proc.stderr
    from gpt2web.engine import Engine

    want = Engine.load(REPO / "weights" / "demo").next_tokens("In the beginning", top=3)
    assert [r["id"] for r in json.loads(proc.stdout)] == [r["id"] for r in want]

    # serve, with models from a folder elsewhere (--weights)
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy2(REPO / "weights" / "gpt2.tiktoken", models / "gpt2.tiktoken")
    shutil.copytree(REPO / "weights" / "demo", models / "other")
    srv = subprocess.Popen([gpt2web, "serve", "--port", "0", "--weights", str(models)], cwd=empty, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()  # the first line, as scripts read it (set-up talk goes to stderr)
        assert line.startswith("Serving gpt2web at http://127.0.0.1:"), line + srv.stderr.read()
        base = line.strip().rsplit(" ", 1)[1]
        for path in ("", "widget.js", "worker.js", "kernels/int8.wasm", "runtime/pyodide.mjs",
                     "runtime/pyodide.asm.wasm", "wheels/index.json", "weights/other/manifest.json"):
            status, body, _ = _get(base + path)
            assert status == 200 and body, path
        listed = json.loads(_get(base + "models.json")[1])["models"]
        assert [m["id"] for m in listed] == ["other"]
        wheel_index = json.loads(_get(base + "wheels/index.json")[1])
        assert _get(base + "wheels/" + wheel_index["wheel"])[0] == 200
    finally:
        srv.terminate()
        srv.wait(10)
        srv.stdout.close()
        srv.stderr.close()

    out = empty / "offline"
    proc = _run([gpt2web, "export", str(out)], cwd=empty, env=env)
    assert proc.returncode == 0, proc.stderr
    for f in ("index.html", "widget.js", "kernels/int8.wasm", "runtime/pyodide.mjs", "runtime/pyodide.asm.wasm",
              "wheels/index.json", "weights/gpt2.tiktoken", "weights/demo/manifest.json", "models.json", "serve.py"):
        assert (out / f).is_file(), f
    assert runtime.check_runtime(out / "runtime") == []
    assert [m["id"] for m in json.loads((out / "models.json").read_text())["models"]] == ["demo"]
    # Nothing was written next to the package: the empty folder holds only the export.
    assert sorted(p.name for p in empty.iterdir()) == ["offline"]


def test_sphinx_from_the_installed_package(venv, wheel, seeded_cache, tmp_path):
    proc = _run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[docs]"])
    assert proc.returncode == 0, proc.stderr
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('extensions = ["gpt2web.sphinx"]\n')
    (src / "index.rst").write_text("T\n=\n\n.. gpt2-widget::\n   :mode: next\n   :prompt: And God said\n")
    env = dict(os.environ, GPT2WEB_CACHE=str(seeded_cache))
    env.pop("PYTHONPATH", None)
    proc = _run([str(venv / "bin" / "python"), "-m", "sphinx", "-q", "-b", "html", str(src), str(tmp_path / "out")],
                cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assets = tmp_path / "out" / "_static" / "gpt2web"
    for f in ("widget.js", "worker.js", "kernels/int8.wasm", "runtime/pyodide.asm.wasm", "wheels/index.json",
              "weights/gpt2.tiktoken", "weights/demo/manifest.json", "gpt2web-static.css"):
        assert (assets / f).is_file(), f
    assert "<meter" in (tmp_path / "out" / "index.html").read_text()
