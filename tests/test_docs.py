"""Widgets in documentation builds: a real Sphinx project (and a real MkDocs site) with
widgets, built into temp folders, served at a sub-path (/docs/) by a plain static server that
sends the strict Content-Security-Policy, in real Chromium.

Checked: the bars are in the built HTML and on screen with the CLI's numbers before any
WebAssembly, runtime or model file is requested (also with JavaScript off); a click brings the
live widget, whose numbers are the CLI's too, without the page below it moving up; every
request stays on the docs host; no CSP violation is reported.

Run:  .venv/bin/python -m pytest -q tests/test_docs.py
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("playwright")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "py"))

from gpt2web.host.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402, F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

BOOT_TIMEOUT = 180_000  # ms: Pyodide + the demo model on a busy 2-core machine
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
       "worker-src 'self' blob:")
NEXT = dict(prompt="And God said", candidates=5)
GEN = dict(prompt="In the beginning", max_tokens=8, temperature=0.8, top_k=40, seed=1, candidates=4)
HEAVY = re.compile(r"\.wasm$|/runtime/|/weights/|/wheels/|\.whl$|\.bin$")


def cli(*args) -> object:
    proc = subprocess.run([sys.executable, "-m", "gpt2web.host.cli", *args, "--json"], capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(REPO / "py"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def expected():
    nxt = cli("next", NEXT["prompt"], "--top", str(NEXT["candidates"]))
    gen = cli("generate", GEN["prompt"], "--max-tokens", str(GEN["max_tokens"]), "--temperature",
              str(GEN["temperature"]), "--top-k", str(GEN["top_k"]), "--seed", str(GEN["seed"]),
              "--candidates", str(GEN["candidates"]))
    return {"next": nxt, "generate": gen}


# ---------------------------------------------------------------- the sites


def build_sphinx(tmp: Path, base: str) -> Path:
    src = tmp / "src"
    src.mkdir()
    (src / "conf.py").write_text(textwrap.dedent("""\
        project = "Lessons"
        extensions = ["gpt2web.sphinx"]
        html_theme = "alabaster"
        html_sidebars = {"**": []}  # alabaster's search box has an inline script (CSP)
        """))
    (src / "index.rst").write_text(textwrap.dedent(f"""\
        Lesson 3
        ========

        What the model expects after a prompt:

        .. gpt2-widget::
           :mode: next
           :prompt: {NEXT["prompt"]}
           :candidates: {NEXT["candidates"]}

        A seeded generation, with the candidates of each token:

        .. gpt2-widget::
           :prompt: {GEN["prompt"]}
           :max-tokens: {GEN["max_tokens"]}
           :temperature: {GEN["temperature"]}
           :top-k: {GEN["top_k"]}
           :seed: {GEN["seed"]}
           :candidates: {GEN["candidates"]}

        The paragraph after the widgets.
        """))
    (src / "eager.rst").write_text(textwrap.dedent(f"""\
        :orphan:

        Eager
        =====

        .. gpt2-widget::
           :mode: next
           :prompt: {NEXT["prompt"]}
           :candidates: {NEXT["candidates"]}
           :loading: eager
        """))
    out = tmp / "html"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-W", "-b", "html", str(src), str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def build_mkdocs(tmp: Path, base: str) -> Path:
    """Material for MkDocs with instant navigation; both widgets on the first page, a third on
    the second (reached by instant navigation)."""
    docs = tmp / "docs"
    docs.mkdir()
    (tmp / "mkdocs.yml").write_text(textwrap.dedent(f"""\
        site_name: Lessons
        site_url: {base}
        theme:
          name: material
          features: [navigation.instant]
          font: false  # Material would fetch Google Fonts: no request may leave the docs host
        plugins:
          - gpt2web
        nav:
          - index.md
          - two.md
        """))
    gen = "\n".join(f"{k.replace('_', '-')}: {v}" for k, v in GEN.items())
    (docs / "index.md").write_text(
        f"# Lesson 3\n\nWhat the model expects after a prompt:\n\n```gpt2-widget\nmode: next\n"
        f"prompt: {NEXT['prompt']}\ncandidates: {NEXT['candidates']}\n```\n\n"
        f"A seeded generation:\n\n```gpt2-widget\n{gen}\n```\n\nThe paragraph after the widgets.\n\n"
        f"Next: [the second lesson](two.md).\n")
    (docs / "two.md").write_text(f"# Lesson 4\n\n```gpt2-widget\n{gen}\n```\n\nThe end of lesson 4.\n")
    out = tmp / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "--strict", "-f", str(tmp / "mkdocs.yml"),
                           "-d", str(out)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr
    return out


BUILDERS = {"sphinx": build_sphinx, "mkdocs": build_mkdocs}


class Handler(http.server.SimpleHTTPRequestHandler):
    """A plain static server: files only, the MIME types browsers insist on, the strict CSP."""
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
                      ".css": "text/css", ".bin": "application/octet-stream", ".whl": "application/zip",
                      ".tiktoken": "text/plain"}

    def end_headers(self):
        self.send_header("Content-Security-Policy", CSP)
        super().end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def site(request, tmp_path_factory):
    """(base URL of the site at /docs/, the built folder)."""
    root = tmp_path_factory.mktemp(f"{request.param}-site")
    served = root / "www"
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/docs/"
    try:
        built = BUILDERS[request.param](root, base)
        (served / "docs").symlink_to(built, target_is_directory=True)
        yield base, built
    finally:
        httpd.shutdown()
        httpd.server_close()


# ---------------------------------------------------------------- the checks

WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push({directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile,
                            line: e.lineNumber}));
"""


def ours(violations: list[dict], built: Path, base: str) -> list[dict]:
    """The violations not caused by the theme's own inline scripts (Material has a few): an
    inline one counts as ours when the page's line it names is widget markup."""
    mine = []
    for v in violations:
        if v["blocked"] == "data" and v["directive"] == "img-src":
            continue  # data: images in the theme's CSS (ours has none: test_built_html_has_the_bars)
        if v["blocked"] == "inline" and v["source"].startswith(base):
            rel = v["source"][len(base):].split("#")[0] or "index.html"
            path = built / rel
            if path.is_dir() or rel.endswith("/"):
                path = path / "index.html"
            lines = path.read_text().splitlines()
            if 0 < v["line"] <= len(lines) and "gpt2" not in lines[v["line"] - 1]:
                continue
        mine.append(v)
    return mine


def static_numbers(page, selector: str) -> dict:
    return page.eval_on_selector(selector, """(w) => {
        const s = w.querySelector(":scope > .gpt2-static");
        if (!s) return null;
        const rows = [...s.querySelectorAll(".bars:not(.outside) .cand")];
        return {
          ids: rows.map((r) => Number(r.dataset.id)),
          probs: rows.map((r) => Number(r.querySelector("meter").value)),
          chips: [...s.querySelectorAll(".chip")].map((c) => Number(c.dataset.id)),
          visible: rows.map((r) => { const b = r.querySelector("meter").getBoundingClientRect();
                                    return b.width > 20 && b.height > 4; }),
        };
    }""")


def live_numbers(page, selector: str) -> dict:
    return page.eval_on_selector(selector, """(w) => {
        const r = w.shadowRoot.querySelector(".w");
        const rows = [...r.querySelectorAll(".bars:not(.outside) .cand")];
        return {
          ids: rows.map((x) => Number(x.dataset.id)),
          probs: rows.map((x) => Number(x.querySelector("meter").value)),
          chips: [...r.querySelectorAll(".chip")].map((c) => Number(c.dataset.id)),
        };
    }""")


def is_live(selector: str) -> str:
    return f"""() => {{
        const w = document.querySelector({json.dumps(selector)});
        const r = w?.shadowRoot?.querySelector(".w");
        return Boolean(r && !r.hidden && !w.querySelector(":scope > .gpt2-static")
                       && r.querySelector(".bars .cand"));
    }}"""


def test_built_html_has_the_bars(site, expected):
    _, built = site
    html = (built / "index.html").read_text()
    for row in expected["next"]:
        assert f'value="{row["prob"]!r}"' in html
    assets = built / ("_static/gpt2web" if (built / "_static").is_dir() else "gpt2web")  # Sphinx, MkDocs
    assert (assets / "widget.js").is_file()
    assert (assets / "runtime" / "pyodide.asm.wasm").is_file()
    assert (assets / "weights" / "demo" / "manifest.json").is_file()
    css = next(built.glob("**/gpt2web-static.css")).read_text()
    assert "data:" not in css and "url(" not in css
    widgets = re.findall(r"<gpt2-widget.*?</gpt2-widget>", html, flags=re.S)
    assert len(widgets) == 2
    for w in widgets:  # nothing inline from us: works under script-src/style-src 'self'
        assert "<script" not in w and "<style" not in w and " style=" not in w and " on" not in w.split(">")[0]


def test_bars_without_javascript(site, browser, expected):
    base, _ = site
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(base + "index.html")
    meters = page.locator('gpt2-widget[mode="next"] .gpt2-static .bars .cand meter')
    assert meters.count() == len(expected["next"])
    for i, row in enumerate(expected["next"]):
        assert meters.nth(i).is_visible()
        assert float(meters.nth(i).get_attribute("value")) == row["prob"]
    y_static = page.locator("text=The paragraph after the widgets.").bounding_box()["y"]
    context.close()
    # With JavaScript the element upgrades and shows the same view through its slot: same layout.
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(base + "index.html")
    page.wait_for_function("() => customElements.get('gpt2-widget') !== undefined")
    page.wait_for_timeout(300)
    assert abs(page.locator("text=The paragraph after the widgets.").bounding_box()["y"] - y_static) <= 2
    page.close()


def test_static_first_then_live_on_click(site, browser, expected):
    base, built = site
    host = urlsplit(base).netloc
    context = browser.new_context(viewport={"width": 1100, "height": 1600})
    page = context.new_page()
    page.add_init_script(WATCH_CSP)
    requests, console = [], []
    page.on("request", lambda r: requests.append(r.url))
    context.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console.append(m.text))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.on("worker", lambda w: w.on("console", lambda m: console.append(m.text)))

    page.goto(base + "index.html")
    page.wait_for_function("() => customElements.get('gpt2-widget') !== undefined")
    page.wait_for_timeout(500)  # whatever the page would load by itself
    nxt, gen = 'gpt2-widget[mode="next"]', "gpt2-widget:not([mode])"

    # 1. The static first view: the CLI's numbers, on screen, nothing heavy requested.
    s = static_numbers(page, nxt)
    assert s["ids"] == [r["id"] for r in expected["next"]]
    assert s["probs"] == [r["prob"] for r in expected["next"]]
    assert all(s["visible"])
    g = static_numbers(page, gen)
    steps = expected["generate"]["steps"]
    assert g["chips"] == expected["generate"]["ids"]
    assert g["ids"] == [c["id"] for c in steps[-1]["candidates"]]
    assert g["probs"] == [c["prob"] for c in steps[-1]["candidates"]]
    heavy = [u for u in requests if HEAVY.search(urlsplit(u).path)]
    assert heavy == [], heavy

    # 2. A click brings the live widget: the same numbers, and nothing below moves up.
    below = page.locator("text=The paragraph after the widgets.")
    y0 = below.bounding_box()["y"]
    page.locator(f"{nxt} > .gpt2-static button", has_text="Show next token").click()
    page.wait_for_function(is_live(nxt), timeout=BOOT_TIMEOUT)
    live = live_numbers(page, nxt)
    assert live["ids"] == [r["id"] for r in expected["next"]]
    assert max(abs(a - r["prob"]) for a, r in zip(live["probs"], expected["next"])) < 1e-5
    assert abs(below.bounding_box()["y"] - y0) <= 2, (y0, below.bounding_box()["y"])
    assert any(HEAVY.search(urlsplit(u).path) for u in requests)  # now it loaded

    page.locator(f"{gen} > .gpt2-static button", has_text="Generate").focus()  # the keyboard, this time
    page.keyboard.press("Enter")
    page.wait_for_function(is_live(gen), timeout=BOOT_TIMEOUT)
    live = live_numbers(page, gen)
    assert live["chips"] == expected["generate"]["ids"]
    assert live["ids"] == [c["id"] for c in steps[-1]["candidates"]]
    assert max(abs(a - c["prob"]) for a, c in zip(live["probs"], steps[-1]["candidates"])) < 1e-5
    assert abs(below.bounding_box()["y"] - y0) <= 2, (y0, below.bounding_box()["y"])  # no jump
    # The live view is focused where the reader clicked, and the keyboard works in it.
    assert page.evaluate(f"document.querySelector({json.dumps(gen)}).shadowRoot.activeElement?.textContent") \
        == "Generate"

    # 3. Everything came from the docs host; no CSP violation.
    foreign = [u for u in requests if urlsplit(u).scheme in ("http", "https") and urlsplit(u).netloc != host]
    assert foreign == [], foreign
    violations = page.evaluate("window.__csp")
    assert ours(violations, built, base) == []
    if (built / "_static").is_dir():  # Sphinx (alabaster without its search box): none at all
        assert violations == []
        assert not [m for m in console if "Content Security Policy" in m], console
    assert not [m for m in console if "pageerror" in m], console
    context.close()


def test_sphinx_hosted_copy_and_bad_options(tmp_path):
    """gpt2web_base_url: the pages load the widget from there and nothing heavy is copied;
    a bad option fails the build with one line naming it."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('extensions = ["gpt2web.sphinx"]\n'
                                 'gpt2web_base_url = "https://models.example.org/gpt2web"\n')
    (src / "index.rst").write_text("T\n=\n\n.. gpt2-widget::\n   :mode: next\n   :prompt: And God said\n")
    out = tmp_path / "html"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    html = (out / "index.html").read_text()
    assert '<script type="module" src="https://models.example.org/gpt2web/widget.js"></script>' in html
    assert "<meter" in html
    assert (out / "_static" / "gpt2web" / "gpt2web-static.css").is_file()
    assert not (out / "_static" / "gpt2web" / "runtime").exists()
    assert not (out / "_static" / "gpt2web" / "weights").exists()

    (src / "index.rst").write_text("T\n=\n\n.. gpt2-widget::\n   :mode: nxt\n")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-E", "-W", "-b", "html", str(src), str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "gpt2-widget: mode must be 'generate' or 'next', got 'nxt'" in proc.stderr


def test_mkdocs_material_instant_navigation(site, browser, expected):
    """Material swaps the page in without reloading: the new page's widget still shows its
    static bars, starts on a click and gives the CLI's tokens."""
    base, built = site
    if (built / "_static").is_dir():
        pytest.skip("Sphinx has no instant navigation")
    page = browser.new_page()
    page.goto(base + "index.html")
    page.wait_for_function("() => customElements.get('gpt2-widget') !== undefined")
    page.evaluate("window.__same_document = true")
    page.click("text=the second lesson")
    page.wait_for_function("() => location.pathname.endsWith('/two/')")
    page.wait_for_selector("text=The end of lesson 4.")
    assert page.evaluate("window.__same_document === true"), "Material reloaded the page"
    w = "gpt2-widget"
    assert page.locator(w).count() == 1
    s = static_numbers(page, w)
    steps = expected["generate"]["steps"]
    assert s["chips"] == expected["generate"]["ids"] and all(s["visible"])
    assert page.evaluate("Boolean(document.querySelector('gpt2-widget').shadowRoot)")  # upgraded
    page.locator(f"{w} > .gpt2-static button", has_text="Generate").click()
    page.wait_for_function(is_live(w), timeout=BOOT_TIMEOUT)
    live = live_numbers(page, w)
    assert live["chips"] == expected["generate"]["ids"]
    assert live["ids"] == [c["id"] for c in steps[-1]["candidates"]]
    page.close()


def test_sphinx_loading_eager(site, browser, expected):
    """loading="eager": the widget goes live by itself, with the same numbers."""
    base, built = site
    if not (built / "eager.html").is_file():
        pytest.skip("only the Sphinx site has the eager page")
    page = browser.new_page()
    page.goto(base + "eager.html")
    w = "gpt2-widget"
    page.wait_for_function(is_live(w), timeout=BOOT_TIMEOUT)
    live = live_numbers(page, w)
    assert live["ids"] == [r["id"] for r in expected["next"]]
    assert max(abs(a - r["prob"]) for a, r in zip(live["probs"], expected["next"])) < 1e-5
    page.close()


def test_an_example_prompt_clicked_in_the_static_view(site, browser):
    """The model's example prompts in the static view are the reader's choice: clicking one
    starts the widget on it."""
    base, built = site
    if not (built / "_static").is_dir():
        pytest.skip("once is enough (Sphinx)")
    manifest = json.loads((REPO / "weights" / "demo" / "manifest.json").read_text())
    if not manifest.get("examples"):
        pytest.skip("the demo model has no example prompts")
    example = manifest["examples"][-1]
    want = cli("next", example, "--top", str(NEXT["candidates"]))
    page = browser.new_page()
    page.goto(base + "index.html")
    nxt = 'gpt2-widget[mode="next"]'
    page.locator(f"{nxt} > .gpt2-static button.example", has_text=example).click()
    page.wait_for_function(is_live(nxt), timeout=BOOT_TIMEOUT)
    page.wait_for_function(f"""() => document.querySelector({json.dumps(nxt)}).shadowRoot
        .querySelector(".bars .cand")?.dataset.id === "{want[0]['id']}" """, timeout=60_000)
    live = live_numbers(page, nxt)
    assert live["ids"] == [r["id"] for r in want]
    assert page.evaluate(f"document.querySelector({json.dumps(nxt)}).shadowRoot.querySelector('textarea').value") \
        == example
    page.close()


def test_sphinx_models_from_another_folder(tmp_path):
    """gpt2web_weights (relative to conf.py) and :model:: the model is rendered and copied."""
    import shutil

    src = tmp_path / "src"
    (src / "models").mkdir(parents=True)
    shutil.copy2(REPO / "weights" / "gpt2.tiktoken", src / "models" / "gpt2.tiktoken")
    shutil.copytree(REPO / "weights" / "demo", src / "models" / "other")
    (src / "conf.py").write_text('extensions = ["gpt2web.sphinx"]\ngpt2web_weights = "models"\n'
                                 'exclude_patterns = ["models"]\n')
    (src / "index.rst").write_text("T\n=\n\n.. gpt2-widget::\n   :mode: next\n   :model: other\n"
                                   "   :prompt: And God said\n")
    out = tmp_path / "html"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-W", "-b", "html", str(src), str(out)],
                          capture_output=True, text=True, timeout=600, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assets = out / "_static" / "gpt2web"
    assert (assets / "weights" / "other" / "manifest.json").is_file()
    assert (assets / "weights" / "gpt2.tiktoken").is_file()
    assert not (assets / "weights" / "demo").exists()
    assert 'model="other"' in (out / "index.html").read_text()
