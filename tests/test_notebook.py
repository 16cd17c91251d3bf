"""The notebook widget (anywidget): the kernel answers the worker's protocol with the engine,
and its front-end module is the page's own widget.js with the modules it imports.

The browser test loads the widget's `_esm` in real Chromium the way anywidget does (a module
with a default `render({model, el})`), with a small stand-in for anywidget's model object
whose `send` goes to the kernel side (`Widget.handle`) over HTTP instead of a Jupyter comm.

Run:  .venv/bin/python -m pytest -q tests/test_notebook.py
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("anywidget")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "py"))

from gpt2web.engine import Engine  # noqa: E402
from gpt2web.host.notebook_widget import IMPORT, NOT_IN_NOTEBOOKS, module_graph  # noqa: E402
from gpt2web.host.render import RenderError  # noqa: E402
from gpt2web.notebook import Widget  # noqa: E402
from gpt2web.sampling import SamplingParams  # noqa: E402

PROMPT = "And God said"
GEN = dict(prompt="In the beginning", temperature=0.8, top_k=40, top_p=1.0, seed=1, max_tokens=6, candidates=4)


@pytest.fixture(scope="module")
def engine():
    return Engine.load(REPO / "weights" / "demo")


def test_the_kernel_computes_the_engines_numbers(engine):
    w = Widget(prompt=PROMPT, mode="next", candidates=5)
    assert w.attrs == {"prompt": PROMPT, "mode": "next", "candidates": "5"}
    (ready,) = w.handle({"type": "load", "id": "l", "model": "demo"})
    assert ready["type"] == "ready" and ready["config"]["n_layer"] == engine.model.config.n_layer
    (answer,) = w.handle({"type": "next", "id": "n", "model": "demo", "prompt": PROMPT, "top": 5})
    assert answer["type"] == "next"
    assert answer["tokens"] == engine.next_tokens(PROMPT, top=5)

    msgs = w.handle({"type": "generate", "id": "g", "model": "demo", **GEN})
    want = engine.generate(GEN["prompt"], SamplingParams(GEN["temperature"], GEN["top_k"], GEN["top_p"], GEN["seed"]),
                           max_tokens=GEN["max_tokens"], n_candidates=GEN["candidates"])
    steps = list(want)
    tokens = [m for m in msgs if m["type"] == "token"]
    assert [m["token_id"] for m in tokens] == [s["id"] for s in steps]
    assert [m["candidates"] for m in tokens] == [s["candidates"] for s in steps]
    assert msgs[-1]["type"] == "done" and msgs[-1]["ids"] == want.ids and msgs[-1]["text"] == want.text

    (bad,) = w.handle({"type": "next", "id": "e", "model": "demo", "prompt": "", "top": 5})
    assert bad["type"] == "error" and bad["kind"] == "prompt"


def test_bad_arguments_are_one_line():
    with pytest.raises(RenderError, match="mode must be 'generate' or 'next'"):
        Widget(prompt="x", mode="chat")
    with pytest.raises(RenderError, match="no model 'nope'"):
        Widget(prompt="x", model="nope")
    with pytest.raises(RenderError, match="unknown widget attribute 'colour'"):
        Widget(prompt="x", colour="red")


def test_the_front_end_is_the_pages_widget_module():
    w = Widget(prompt=PROMPT, mode="next")
    graph = module_graph()
    assert graph[-1][0] == "widget.js"
    paths = [p for p, _ in graph]
    assert "bars.js" in paths and "client.js" in paths
    web = REPO / "web"
    for path, source in graph:
        if path in NOT_IN_NOTEBOOKS:
            assert source == ""
            continue
        # The real file, with only its import specifiers re-pointed (to the other modules' blob URLs).
        original = (web / path).read_text()
        assert re.sub(r"@@gpt2web:[^@]+@@", "X", source) == IMPORT.sub(r"\1\2X\2", original)
        assert json.dumps(source) in w._esm
    assert dict(graph)["widget.js"].count("@@gpt2web:") >= 3


# ---------------------------------------------------------------- in Chromium

HARNESS = """
// A stand-in for anywidget's model: attrs from the widget, custom messages over HTTP.
const handlers = new Set();
const model = {
  get: (key) => JSON.parse(document.body.dataset[key]),
  on: (event, fn) => { if (event === "msg:custom") handlers.add(fn); },
  off: (event, fn) => handlers.delete(fn),
  send: async (msg) => {
    const resp = await fetch("comm", { method: "POST", body: JSON.stringify(msg) });
    for (const answer of await resp.json()) for (const fn of handlers) fn(answer);
  },
};
const { default: widget } = await import("./widget.mjs");
await widget.render({ model, el: document.getElementById("out") });
document.body.dataset.rendered = "yes";
"""


@pytest.mark.browser
def test_in_chromium(browser, engine, tmp_path):
    from gpt2web.host.chromium import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    w = Widget(prompt=PROMPT, mode="next", candidates=5)
    (tmp_path / "widget.mjs").write_text(w._esm)
    (tmp_path / "harness.js").write_text(HARNESS)
    (tmp_path / "index.html").write_text(
        f"<!doctype html><meta charset=utf-8><body data-attrs='{json.dumps(w.attrs)}'>"
        "<div id=out></div><script type=module src=harness.js></script></body>")

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                          ".js": "text/javascript"}

        def do_POST(self):
            msg = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = json.dumps(w.handle(msg)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    page = browser.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
        page.wait_for_function("""() => {
            const w = document.querySelector("gpt2-widget");
            return w?.shadowRoot?.querySelectorAll(".bars .cand").length === 5; }""", timeout=60_000)
        rows = page.evaluate("""() => [...document.querySelector("gpt2-widget").shadowRoot
            .querySelectorAll(".bars .cand")].map((r) => [Number(r.dataset.id), Number(r.querySelector("meter").value)])""")
        assert rows == [[t["id"], t["prob"]] for t in engine.next_tokens(PROMPT, top=5)]
        assert errors == []
        assert not [u for u in requests if u.endswith((".wasm", ".whl", ".bin")) or "/runtime/" in u]
    finally:
        page.close()
        httpd.shutdown()
        httpd.server_close()


# ---------------------------------------------------------------- in a real JupyterLab


@pytest.mark.browser
@pytest.mark.slow
def test_in_jupyterlab(browser, engine, tmp_path):
    """A notebook cell `Widget(prompt=..., mode="next")` in real JupyterLab (anywidget's own
    front end, a real kernel): the bars are the engine's, and no runtime or model is fetched."""
    pytest.importorskip("jupyterlab")
    import socket
    import subprocess
    import time
    import urllib.request

    cell = ("from gpt2web.notebook import Widget\n"
            f"Widget(prompt={PROMPT!r}, mode='next', candidates=5)")
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                     "source": cell}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "lesson.ipynb").write_text(json.dumps(nb))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "gpt2web-test"
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO / "py"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    lab = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}",
                            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
                            f"--ServerApp.root_dir={tmp_path}", "--ServerApp.port_retries=0", "--allow-root",
                            "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
                            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    page = None
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert lab.poll() is None, lab.stderr.read()
                time.sleep(0.5)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{base}/lab/tree/lesson.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=120_000)
        # Run the cell once the notebook's kernel is up (JupyterLab's own command).
        page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext", timeout=120_000)
        page.evaluate("""async () => {
            const nb = window.jupyterapp.shell.currentWidget;
            await nb.sessionContext.ready;
            await window.jupyterapp.commands.execute("notebook:run-all-cells");
        }""")
        try:
            page.wait_for_function("""() => document.querySelector("gpt2-widget")?.shadowRoot
                ?.querySelectorAll(".bars .cand").length === 5""", timeout=180_000)
        except Exception:
            (REPO / "test-artifacts").mkdir(exist_ok=True)
            page.screenshot(path=str(REPO / "test-artifacts" / "jupyterlab.png"))
            raise
        rows = page.evaluate("""() => [...document.querySelector("gpt2-widget").shadowRoot
            .querySelectorAll(".bars .cand")].map((r) => [Number(r.dataset.id), Number(r.querySelector("meter").value)])""")
        assert rows == [[t["id"], t["prob"]] for t in engine.next_tokens(PROMPT, top=5)]
        assert not [u for u in requests if u.endswith((".wasm", ".whl", ".bin")) or "/runtime/" in u]
    finally:
        if page is not None:
            page.close()
        lab.terminate()
        try:
            lab.wait(20)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()
