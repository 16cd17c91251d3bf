"""<gpt2-widget> embedded in a documentation page on another origin, in real Chromium.

The gpt2web server (conftest.py: tiny model, real uvicorn) serves widget.js, the worker, the
runtime and the weights. A second, plain static server on another port (another origin)
serves only a documentation page: prose, one script tag pointing at the gpt2web server's
widget.js, two generating widgets and a next-token table. The page's own CSS tries to restyle
buttons, paragraphs and the widget's class names; none of it may reach inside the widgets.

Checked: the widgets draw before the model is ready; both generate the ids the CPython engine
gives for the same prompt and seed, with the same candidate bars; Step and picking work; the
next-token table is the engine's; the page runs one worker (started through a same-origin
blob, since the worker lives on the other origin) and downloads each shard once; errors are
readable.

Run:  PYTHONPATH=py nice -n 10 python3 -m pytest -q tests/test_widget.py
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("playwright")

from gpt2web.sampling import SamplingParams  # noqa: E402

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
BOOT_TIMEOUT = 120_000  # ms: Pyodide + model on a busy 2-core machine
# Page vs CPython, relative: probabilities agree to float32 rounding of the logits (measured
# ~1e-6 relative; int8 kernels vs BLAS included). An absolute 1e-5 said nothing about the
# small probabilities a flat model shows. FLOOR only lets an exact 0 (a share cut off) be 0.
REL, FLOOR = 2e-5, 1e-12

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

# The widgets on the documentation page: their attributes, as a reader's page would set them.
WIDGETS = {
    "a": dict(prompt="In the beginning", temperature=0.8, top_k=40, top_p=1, seed=1, max_tokens=12, candidates=5),
    "b": dict(prompt="I wish you a happy New", temperature=1, top_k=0, top_p=0.9, seed=7, max_tokens=10,
              candidates=4),
}
NEXT_PROMPT = "And God said"

DOC_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Lesson 3: sampling</title>
  <link rel="icon" href="data:,">
  <style>
    /* The documentation site's CSS, some of it hostile: none of it may reach the widgets. */
    body {{ font: 17px/1.6 Georgia, serif; color: rgb(0, 100, 0); max-width: 52rem; margin: 1rem auto; }}
    button {{ background: rgb(255, 0, 0); }}
    p {{ letter-spacing: 3px; }}
    .cand, .chip {{ display: none; }}
    .status {{ color: rgb(0, 0, 255); }}
  </style>
  <script type="module" src="{widget_js}"></script>
</head>
<body>
  <h1>Lesson 3: how a GPT picks the next token</h1>
  <p class="status" id="page-status">A paragraph of the page's own, class "status".</p>
  <p>Press Generate: the model writes a token at a time.</p>
  <gpt2-widget id="a" prompt="{a[prompt]}" temperature="{a[temperature]}" top-k="{a[top_k]}" seed="{a[seed]}"
               max-tokens="{a[max_tokens]}" candidates="{a[candidates]}"></gpt2-widget>
  <p>Same model, other settings, in a second widget.</p>
  <gpt2-widget id="b" prompt="{b[prompt]}" temperature="{b[temperature]}" top-k="{b[top_k]}" top-p="{b[top_p]}"
               seed="{b[seed]}" max-tokens="{b[max_tokens]}" candidates="{b[candidates]}"></gpt2-widget>
  <p>And the model's view of one prompt:</p>
  <gpt2-widget id="c" mode="next" prompt="{next_prompt}" candidates="5"></gpt2-widget>
  <button id="page-button" type="button">A button of the page's own</button>
</body>
</html>
"""


# --------------------------------------------------------------------------- fixtures


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def doc_url(server, tmp_path_factory):
    """A plain static server on another port (another origin) with only the documentation page."""
    root = tmp_path_factory.mktemp("docs-site")
    (root / "lesson.html").write_text(DOC_PAGE.format(
        widget_js=f"{server}widget.js", a=WIDGETS["a"], b=WIDGETS["b"], next_prompt=NEXT_PROMPT))
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/lesson.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


class Docs:
    """The documentation page and every request its context made (the worker's too)."""

    def __init__(self, context, url):
        self.requests: list[str] = []
        context.on("request", lambda r: self.requests.append(r.url))
        self.errors: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda m: m.type == "error" and print("console:", m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until="domcontentloaded")


@pytest.fixture(scope="module")
def docs(browser, server, doc_url):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1100, "height": 900}, service_workers="block")
    context.set_default_timeout(30_000)
    yield Docs(context, doc_url)
    context.close()


# --------------------------------------------------------------------------- helpers


def state(page, wid: str) -> str:
    return page.evaluate("id => document.getElementById(id).state", wid)


def wait_state(page, wid: str, states, timeout=60_000):
    page.wait_for_function("([id, states]) => states.includes(document.getElementById(id).state)",
                           arg=[wid, list(states)], timeout=timeout)


def chips(page, wid: str) -> list[dict]:
    return page.eval_on_selector_all(
        f"#{wid} .chip", "els => els.map(e => ({id: Number(e.dataset.id), text: e.textContent}))")


def bars(page, wid: str) -> list[dict]:
    return page.eval_on_selector_all(f"#{wid} ol.bars:not(.outside) li.cand", """els => els.map(li => {
        const m = li.querySelector('meter');
        return {id: Number(li.dataset.id), prob: m.value, min: m.min, max: m.max,
                name: m.getAttribute('aria-label'), share: li.dataset.share === undefined ? null : Number(li.dataset.share),
                chosen: li.classList.contains('chosen'), label: li.querySelector('.tok').textContent};
    })""")


def assert_bars_match(shown, expected, *, chosen=True, share=True):
    assert [b["id"] for b in shown] == [c["id"] for c in expected]
    for b, c in zip(shown, expected):
        assert (b["min"], b["max"]) == (0, 1)
        assert b["prob"] == pytest.approx(c["prob"], rel=REL, abs=FLOOR), c
        assert b["name"] == c["token"] == b["label"]  # the meter's accessible name is the token
        if share:
            assert b["share"] == pytest.approx(c["sample_prob"], rel=REL, abs=FLOOR), c
        if chosen:
            assert b["chosen"] == c["chosen"]


def cpython_steps(engine, w: dict):
    gen = engine.generate(w["prompt"], SamplingParams(w["temperature"], w["top_k"], w["top_p"], w["seed"]),
                          max_tokens=w["max_tokens"], n_candidates=w["candidates"])
    return list(gen), gen.text


def button(page, wid: str, name: str):
    return page.locator(f"#{wid}").get_by_role("button", name=name, exact=True)


# --------------------------------------------------------------------------- tests


def test_widgets_render_before_the_model_is_ready(docs, server, doc_url):
    page = docs.page
    assert urlsplit(doc_url).netloc != urlsplit(server).netloc  # the page is on another origin
    # The module script ran before DOMContentLoaded: the widgets are drawn, Python still boots.
    for wid in ("a", "b", "c"):
        assert state(page, wid) in ("idle", "loading"), wid
        widget = page.locator(f"#{wid}")
        assert widget.get_by_label("Prompt", exact=True).is_visible()
        assert widget.get_by_role("region").get_attribute("aria-label")
    for wid in ("a", "b"):
        for name in ("Generate", "Stop", "Step"):
            assert button(page, wid, name).is_visible(), (wid, name)
        assert page.locator(f"#{wid}").get_by_label("Prompt", exact=True).input_value() == WIDGETS[wid]["prompt"]
    # Loading progress is on show while the runtime boots.
    page.wait_for_selector("#a .load:not([hidden]) progress", state="attached", timeout=BOOT_TIMEOUT)
    page.screenshot(path=str(ARTIFACTS / "widget-booting.png"), full_page=True)
    for wid in ("a", "b"):
        wait_state(page, wid, ["ready"], timeout=BOOT_TIMEOUT)
    assert "Ready" in page.locator("#a .status").inner_text()
    assert page.locator("#a .load").is_hidden()


def test_both_widgets_generate_like_cpython(docs, engine):
    page = docs.page
    # Both at once: the shared worker interleaves them, each with its own generation.
    button(page, "a", "Generate").click()
    button(page, "b", "Generate").click()
    for wid in ("a", "b"):
        wait_state(page, wid, ["done", "stopped", "error"])
        assert state(page, wid) == "done", page.locator(f"#{wid} .status").inner_text()
    for wid, w in WIDGETS.items():
        expected, text = cpython_steps(engine, w)
        shown = chips(page, wid)
        assert [c["id"] for c in shown] == [s["id"] for s in expected], wid
        assert [c["text"] for c in shown] == [s["token"] for s in expected]
        assert page.locator(f"#{wid} .gen-text").text_content() == text
        assert page.locator(f"#{wid} .prompt-text").text_content() == w["prompt"]
        # The latest token's bars at the end, any clicked token's after a click.
        assert_bars_match(bars(page, wid), expected[-1]["candidates"])
        for i in (0, 2):
            page.click(f"#{wid} .chip[data-index='{i}']")
            assert_bars_match(bars(page, wid), expected[i]["candidates"])
            assert page.locator(f"#{wid} .other").inner_text().startswith("other tokens:")
        page.click(f"#{wid} .chip[data-index='2']")  # unpin
        # The bars are meters named by their tokens, as assistive technology sees them.
        meters = page.locator(f"#{wid} ol.bars:not(.outside)").get_by_role("meter")
        assert meters.count() == w["candidates"]
        assert f"seed {w['seed']}" in page.locator(f"#{wid} .status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "widget.png"), full_page=True)


def test_step_and_pick_in_a_widget(docs, engine):
    page = docs.page
    w = WIDGETS["a"]
    button(page, "a", "Step").click()  # first token 1's candidates, nothing appended
    page.wait_for_selector("#a ol.bars li.cand button.tok")
    assert page.locator("#a .chips li").count() == 0
    button(page, "a", "Step").click()  # again: the sampler picks
    page.wait_for_selector("#a .chips li:nth-child(1)")
    button(page, "a", "Step").click()
    page.wait_for_selector("#a .chips li:nth-child(2)")
    upcoming = bars(page, "a")  # the candidates for token 3, none chosen yet
    assert not any(b["chosen"] for b in upcoming)
    pick = upcoming[2]["id"]
    page.click("#a ol.bars li.cand:nth-child(3) button.tok")
    page.wait_for_selector("#a .chips li:nth-child(3)")
    gen = engine.generate(w["prompt"], SamplingParams(w["temperature"], w["top_k"], w["top_p"], w["seed"]),
                          max_tokens=w["max_tokens"], n_candidates=w["candidates"])
    expected = [gen.step(), gen.step(), gen.step(forced_id=pick)]
    assert [c["id"] for c in chips(page, "a")] == [s["id"] for s in expected]
    assert_bars_match(upcoming, expected[2]["candidates"], chosen=False)
    button(page, "a", "Stop").click()
    wait_state(page, "a", ["stopped"])


def test_next_mode_shows_the_models_table(docs, engine):
    page = docs.page
    page.wait_for_selector("#c ol.bars li.cand", timeout=BOOT_TIMEOUT)
    assert_bars_match(bars(page, "c"), engine.next_tokens(NEXT_PROMPT, 5), chosen=False, share=False)
    assert all(b["share"] is None for b in bars(page, "c"))  # no settings: no share bars
    assert page.locator("#c").get_by_role("button", name="Generate").count() == 0
    # Editing the prompt updates the table.
    prompt = page.locator("#c").get_by_label("Prompt", exact=True)
    prompt.fill("I wish you a happy New")
    expected = engine.next_tokens("I wish you a happy New", 5)
    page.wait_for_function("id => Number(document.querySelector('#c').shadowRoot"
                           ".querySelector('ol.bars li.cand').dataset.id) === id", arg=expected[0]["id"])
    page.wait_for_function("() => document.querySelector('#c').shadowRoot.querySelector('.cand-title code')"
                           ".textContent === 'I wish you a happy New'")
    assert_bars_match(bars(page, "c"), expected, chosen=False, share=False)


def test_one_worker_one_download_cross_origin(docs, server, weights_dir):
    page = docs.page
    # One worker for the whole page, started from a same-origin blob (the real one is on the
    # gpt2web server); its files all came from the gpt2web server.
    assert len(page.workers) == 1, [w.url for w in page.workers]
    assert page.workers[0].url.startswith("blob:")
    assert page.evaluate("location.origin") != server.rstrip("/")
    manifest = json.loads((weights_dir / "demo" / "manifest.json").read_text())
    shard_urls = [f"{server}weights/demo/{s['file']}" for s in manifest["shards"]]
    fetched = [u for u in docs.requests if "/weights/" in u and u.endswith(".bin")]
    assert sorted(fetched) == sorted(shard_urls)  # every shard, once, for three widgets
    assert sum(u == f"{server}worker.js" for u in docs.requests) == 1
    assert sum(u == f"{server}widget.js" for u in docs.requests) == 1
    assert sum(u.endswith("/manifest.json") for u in docs.requests) == 1
    assert not docs.errors, docs.errors


def test_page_css_stays_out_and_widget_css_stays_in(docs):
    page = docs.page
    style = """([sel, inner, prop]) => {
        const host = document.querySelector(sel);
        const node = inner ? host.shadowRoot.querySelector(inner) : host;
        return getComputedStyle(node)[prop];
    }"""
    assert page.evaluate(style, ["#b", "button.primary", "backgroundColor"]) != "rgb(255, 0, 0)"
    assert page.evaluate(style, ["#b", ".hint", "letterSpacing"]) == "normal"
    assert page.evaluate(style, ["#b", ".text", "color"]) != "rgb(0, 100, 0)"
    assert page.evaluate(style, ["#b", ".status", "color"]) != "rgb(0, 0, 255)"
    assert page.locator("#b .chip").first.is_visible() and page.locator("#b .cand").first.is_visible()
    # ...and the widget's rules do not touch the page.
    assert page.evaluate(style, ["#page-button", None, "backgroundColor"]) == "rgb(255, 0, 0)"
    assert page.evaluate(style, ["#page-status", None, "color"]) == "rgb(0, 0, 255)"


def test_errors_are_readable(docs, weights_dir, engine):
    page = docs.page
    prompt = page.locator("#a").get_by_label("Prompt", exact=True)
    prompt.fill("")
    button(page, "a", "Generate").click()
    assert "prompt is empty" in page.locator("#a .param-error").inner_text()
    assert prompt.get_attribute("aria-invalid") == "true"
    prompt.fill(WIDGETS["a"]["prompt"])
    page.click("#a details.settings summary")  # the settings are folded away at first
    page.locator("#a").get_by_label("Temperature").fill("-1")
    button(page, "a", "Generate").click()
    assert "Temperature" in page.locator("#a .param-error").inner_text()
    page.locator("#a").get_by_label("Temperature").fill("0.8")
    assert page.locator("#a .param-error").is_hidden()

    # A widget added later, for a model with a shard missing: it says which file.
    (gone,) = (weights_dir / "demo").glob("h.1.*.bin")
    page.evaluate("""() => {
        const w = document.createElement('gpt2-widget');
        w.id = 'broken';
        w.setAttribute('model', 'missing');
        document.body.append(w);
    }""")
    page.wait_for_selector("#broken .error:not([hidden])", timeout=BOOT_TIMEOUT)
    message = page.locator("#broken .error").inner_text()
    assert gone.name in message and "404" in message, message
    assert page.locator("#broken .error").get_attribute("data-kind") == "shard"
    assert state(page, "broken") == "error"
    page.locator("#broken").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "widget-error.png"), full_page=True)
    # The other widgets carry on.
    button(page, "b", "Generate").click()
    wait_state(page, "b", ["done"])
    expected, _ = cpython_steps(engine, WIDGETS["b"])
    assert [c["id"] for c in chips(page, "b")] == [s["id"] for s in expected]


def test_example_page_works_on_the_server(browser, server, engine, weights_dir):
    """web/embed.html, served by gpt2web itself: same origin, so the worker starts directly."""
    context = browser.new_context(viewport={"width": 900, "height": 900}, service_workers="block")
    context.set_default_timeout(30_000)
    try:
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        page.goto(f"{server}embed.html", wait_until="domcontentloaded")
        assert page.locator("gpt2-widget").count() == 8  # 3, then one per view mode (lazy)
        page.wait_for_selector("#next-table ol.bars li.cand", timeout=BOOT_TIMEOUT)
        table = engine.next_tokens("In the beginning God created the", 8)
        assert_bars_match(bars(page, "next-table"), table, chosen=False, share=False)
        wait_state(page, "greedy", ["ready"], timeout=BOOT_TIMEOUT)
        button(page, "greedy", "Generate").click()
        wait_state(page, "greedy", ["done", "stopped", "error"])
        greedy = dict(prompt="And God said", temperature=0, top_k=40, top_p=1, seed=None, max_tokens=24, candidates=5)
        expected, _ = cpython_steps(engine, greedy)
        assert [c["id"] for c in chips(page, "greedy")] == [s["id"] for s in expected]
        assert [w.url for w in page.workers] == [f"{server}worker.js"]
        shards = json.loads((weights_dir / "demo" / "manifest.json").read_text())["shards"]
        fetched = [u for u in requests if "/weights/" in u and u.endswith(".bin")]
        assert sorted(fetched) == sorted(f"{server}weights/demo/{s['file']}" for s in shards)
        page.screenshot(path=str(ARTIFACTS / "widget-embed-page.png"), full_page=True)
    finally:
        context.close()
