"""The views (web/views/) in real Chromium, on the shipped model, against the CLI's numbers.

The real server (conftest.py) serves the page, the widget, the worker, real Pyodide and the
shipped model (weights/demo, as "shipped"). The page generates, a token chip is picked and
every view is opened from its tab; a documentation page holds one widget per view mode.
Every number drawn is checked against the CLI (`gpt2web attention / lens / neighbors /
score --json`) or, for a step inside a generation, against the same engine functions on
that step's tokens, with relative tolerances (the browser multiplies int8 on WebAssembly
kernels, CPython in NumPy). A screenshot of each view goes to test-artifacts/.

Run:  PYTHONPATH=py nice -n 10 python3 -m pytest -q tests/test_views.py
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("playwright")

from gpt2web.engine import Engine  # noqa: E402
from gpt2web.explain import Trace, lens_layers, sampling_view  # noqa: E402
from gpt2web.host.cli import main  # noqa: E402
from gpt2web.sampling import SamplingParams  # noqa: E402

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
BOOT_TIMEOUT = 120_000
PROMPT = "And God said unto Moses,"
REL = 1e-4

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def shipped(weights_dir):
    return weights_dir / "shipped"


@pytest.fixture(scope="module")
def ref(shipped):
    return Engine.load(shipped)


def cli(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def page(browser, server):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, service_workers="block")
    context.set_default_timeout(60_000)
    pg = context.new_page()
    pg.on("console", lambda m: m.type == "error" and print("console:", m.text))
    pg.on("pageerror", lambda e: print("pageerror:", e))
    pg.goto(server, wait_until="domcontentloaded")
    pg.wait_for_function("() => [...document.querySelectorAll('#model option')].some(o => o.value === 'shipped')",
                         timeout=BOOT_TIMEOUT)
    pg.select_option("#model", "shipped")
    pg.wait_for_function("() => document.querySelector('#status').dataset.state === 'ready'", timeout=BOOT_TIMEOUT)
    yield pg
    context.close()


def generate(page, *, temperature=0, top_k=0, top_p=1, seed="3", max_tokens=6):
    page.fill("#prompt", PROMPT)
    page.fill("#temperature", str(temperature))
    page.fill("#top_k", str(top_k))
    page.fill("#top_p", str(top_p))
    page.fill("#seed", str(seed))
    page.fill("#max_tokens", str(max_tokens))
    page.click("#generate")
    page.wait_for_function("() => ['done', 'stopped', 'error'].includes(document.querySelector('#status').dataset.state)",
                           timeout=120_000)
    assert page.eval_on_selector("#status", "e => e.dataset.state") == "done"
    return page.eval_on_selector_all("#tokens .chip", "els => els.map(e => Number(e.dataset.id))")


CLASSES = {"Sampling": "v-sampling", "Attention": "v-attention", "Layer by layer": "v-lens",
           "Embeddings": "v-embeddings", "Surprise": "v-surprise", "The loop": "v-loop"}


def open_view(page, name: str, scope="#views"):
    """Click the tab named `name` and wait for the view's next drawing."""
    tab = page.locator(f"{scope} [role=tab]", has_text=name)
    sel = f"{scope} .{CLASSES[name]}"
    before = page.evaluate("s => Number(document.querySelector(s)?.dataset.draws ?? 0)", sel)
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
    page.wait_for_function("([s, n]) => Number(document.querySelector(s)?.dataset.draws ?? 0) > n",
                           arg=[sel, before], timeout=120_000)
    return page.locator(f"{scope} .v-area .v-view")


def view_draws(page, scope) -> int:
    return page.evaluate("s => Number(document.querySelector(s + ' .v-area .v-view')?.dataset.draws ?? 0)", scope)


def wait_drawn(page, scope, before):
    page.wait_for_function("([s, n]) => Number(document.querySelector(s + ' .v-area .v-view')?.dataset.draws ?? 0) > n",
                           arg=[scope, before], timeout=120_000)


def data(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(selector, "els => els.map(e => ({...e.dataset}))")


def assert_rel(got, want, rel=REL, abs_=1e-7):
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=rel, atol=abs_)


def shot(target, name):
    target.screenshot(path=str(ARTIFACTS / f"view-{name}.png"))


# --------------------------------------------------------------------------- the page


def test_views_start_closed_and_open_from_named_tabs(page):
    tabs = page.eval_on_selector_all("#views [role=tab]", "els => els.map(e => [e.textContent, e.getAttribute('aria-selected')])")
    assert [t for t, _ in tabs] == ["Sampling", "Attention", "Layer by layer", "Embeddings", "Surprise", "The loop"]
    assert all(s == "false" for _, s in tabs) and page.locator("#views .v-area").is_hidden()
    # Keyboard: arrows move along the tabs, Enter opens one.
    page.focus("#views [role=tab] >> nth=0")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.textContent") == "Attention"
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.textContent") == "The loop"
    page.keyboard.press("Enter")
    assert page.locator("#views .v-area").is_visible()
    assert page.locator("#views .v-area table caption").first.text_content() == "The loop"
    page.keyboard.press("Enter")  # the open tab again: closed
    assert page.locator("#views .v-area").is_hidden()


def test_sampling_view_matches_the_engine(page, ref):
    ids = generate(page, temperature=0.9, top_k=20, top_p=0.95, seed=5, max_tokens=5)
    page.click("#tokens .chip >> nth=2")  # the third token: its step read the prompt and two tokens
    view = open_view(page, "Sampling")
    context = ref.encode_prompt(PROMPT) + ids[:2]
    logits = Trace(ref.model, context).logits()
    want = sampling_view(logits, SamplingParams(0.9, 20, 0.95, 5), top=30)
    rows = data(page, "#views .v-srow")
    assert [int(r["id"]) for r in rows] == [r["id"] for r in want["rows"]]
    assert_rel([r["prob"] for r in rows], [r["prob"] for r in want["rows"]])
    assert_rel([r["temp"] for r in rows], [r["temp_prob"] for r in want["rows"]])
    assert_rel([r["share"] for r in rows], [r["sample_prob"] for r in want["rows"]])
    assert [r["kept"] == "true" for r in rows] == [r["kept"] for r in want["rows"]]
    # The cut-off lines are drawn where the engine cuts.
    cuts = page.eval_on_selector_all("#views .v-cutline", "els => els.map(e => e.textContent)")
    assert f"top-k cut: k = 20" in cuts and any(f"the first {want['top_p_cut']} reach" in c for c in cuts)
    assert view.locator("table caption").text_content() == "Sampling"
    shot(view, "sampling")

    # Moving temperature re-draws from the same step's logits.
    before = view_draws(page, "#views")
    slider = view.locator("input[type=range] >> nth=0")
    slider.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")  # 0.9 -> 1.1 in steps of 0.05
    wait_drawn(page, "#views", before)
    page.wait_for_function("() => document.querySelector('#views .v-area output').textContent === '1.10'")
    page.wait_for_timeout(300)  # the last of the re-draws
    want = sampling_view(logits, SamplingParams(1.1, 20, 0.95, 5), top=30)
    rows = data(page, "#views .v-srow")
    assert_rel([r["temp"] for r in rows], [r["temp_prob"] for r in want["rows"]])
    assert_rel([r["share"] for r in rows], [r["sample_prob"] for r in want["rows"]])

    # Sample 100 times: seeded draws, the engine's sampler, counted.
    before = view_draws(page, "#views")
    view.locator("button", has_text="Sample 100 times").click()
    wait_drawn(page, "#views", before)
    want = sampling_view(logits, SamplingParams(1.1, 20, 0.95, 5), top=30, samples=100)
    counts = {c[0]: c[1] for c in want["counts"]}
    rows = data(page, "#views .v-srow")
    assert [int(r["count"]) for r in rows] == [counts.get(r["id"], 0) for r in want["rows"]]
    shot(view, "sampling-100")


def test_attention_view_matches_the_engine(page, ref):
    ids = page.eval_on_selector_all("#tokens .chip", "els => els.map(e => Number(e.dataset.id))")
    view = open_view(page, "Attention")
    context = ref.encode_prompt(PROMPT) + ids[:2]  # the step picked above
    n_layer = ref.model.config.n_layer
    trace = Trace(ref.model, context)
    assert view.locator("select >> nth=0").input_value() == str(n_layer - 1)  # the last layer first
    got = [float(d["w"]) for d in data(page, "#views .v-achip")]
    assert_rel(got, trace.attention(n_layer - 1)[-1], abs_=1e-6)
    before = view_draws(page, "#views")
    view.locator("select >> nth=0").select_option("1")
    wait_drawn(page, "#views", before)
    before = view_draws(page, "#views")
    view.locator("select >> nth=1").select_option("2")
    wait_drawn(page, "#views", before)
    got = [float(d["w"]) for d in data(page, "#views .v-achip")]
    assert_rel(got, trace.attention(1, 2)[-1], abs_=1e-6)
    # Another position, by keyboard: its own row of the same matrix.
    view.locator(".v-achip >> nth=-1").focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    q = len(context) - 3
    assert page.evaluate("document.activeElement.dataset.pos") == str(q)
    got = [float(d["w"]) for d in data(page, "#views .v-achip")]
    assert_rel(got[:q + 1], trace.attention(1, 2)[q][:q + 1], abs_=1e-6)
    assert view.locator("table caption").text_content().startswith("Attention")
    shot(view, "attention")


def test_lens_view_matches_the_engine(page, ref):
    ids = page.eval_on_selector_all("#tokens .chip", "els => els.map(e => Number(e.dataset.id))")
    view = open_view(page, "Layer by layer")
    context = ref.encode_prompt(PROMPT) + ids[:2]
    want = lens_layers(ref, Trace(ref.model, context), 5)
    rows = page.eval_on_selector_all("#views .v-lrow", "rows => rows.map(r => [...r.querySelectorAll('.v-lcell')]"
                                     ".map(c => [Number(c.dataset.id), Number(c.dataset.prob)]))")
    assert len(rows) == ref.model.config.n_layer + 1
    for got, L in zip(rows, want):
        assert [g[0] for g in got] == [t["id"] for t in L["top"]]
        assert_rel([g[1] for g in got], [t["prob"] for t in L["top"]])
    # The last row is the step's candidates, as the bars show them.
    bars = page.eval_on_selector_all("#bars li.cand", "els => els.map(e => [Number(e.dataset.id), Number(e.dataset.prob)])")
    assert [g[0] for g in rows[-1]] == [b[0] for b in bars[:5]]
    assert_rel([g[1] for g in rows[-1]], [b[1] for b in bars[:5]])
    assert view.locator("table caption").text_content() == "Layer by layer"
    shot(view, "lens")


def test_embeddings_view_matches_the_cli(page, ref, shipped, capsys):
    view = open_view(page, "Embeddings")
    ids = page.eval_on_selector_all("#tokens .chip", "els => els.map(e => Number(e.dataset.id))")
    last = (ref.encode_prompt(PROMPT) + ids[:2])[-1]
    want = cli(capsys, "neighbors", str(last), "--top", "10", "--json", "--model", str(shipped))
    got = data(page, "#views .v-nrow")
    assert [int(g["id"]) for g in got] == [n["id"] for n in want["neighbors"]]
    assert_rel([g["cos"] for g in got], [n["cosine"] for n in want["neighbors"]])
    # Another token of the context, picked from its button.
    before = view_draws(page, "#views")
    view.locator(".v-achip >> nth=1").click()
    wait_drawn(page, "#views", before)
    other = ref.encode_prompt(PROMPT)[1]
    want = cli(capsys, "neighbors", str(other), "--top", "10", "--json", "--model", str(shipped))
    got = data(page, "#views .v-nrow")
    assert [int(g["id"]) for g in got] == [n["id"] for n in want["neighbors"]]
    assert view.locator("svg circle").count() >= 5
    assert view.locator("table caption >> nth=0").text_content().startswith("Embeddings")
    shot(view, "embeddings")


def test_surprise_view_matches_the_cli(page, ref, shipped, capsys):
    view = open_view(page, "Surprise")
    text = page.eval_on_selector("#views .v-text", "e => e.value")
    assert text == PROMPT + page.eval_on_selector("#text .gen-text", "e => e.textContent")
    want = cli(capsys, "score", text, "--json", "--model", str(shipped))
    got = data(page, "#views .v-st")
    assert [int(g["id"]) for g in got] == [t["id"] for t in want["tokens"]]
    assert_rel([g["prob"] for g in got], [t["prob"] for t in want["tokens"]])
    assert [int(g["rank"]) for g in got] == [t["rank"] for t in want["tokens"]]
    assert f"perplexity {want['perplexity']:.2f}" in view.locator(".v-summary").text_content()
    shot(view, "surprise")
    # Any pasted text: scored on Ctrl+Enter.
    before = view_draws(page, "#views")
    view.locator("textarea").fill("In the beginning was the Word")
    view.locator("textarea").press("Control+Enter")
    wait_drawn(page, "#views", before)
    want = cli(capsys, "score", "In the beginning was the Word", "--json", "--model", str(shipped))
    assert_rel([g["prob"] for g in data(page, "#views .v-st")], [t["prob"] for t in want["tokens"]])
    empty_before = view.locator(".v-error").is_visible()
    view.locator("textarea").fill("")
    view.locator("button", has_text="Score this text").click()
    assert not empty_before and "empty" in view.locator(".v-error").text_content()
    shot(view, "surprise-empty")


def test_loop_view_and_the_cache_switch(page, ref):
    n0 = len(ref.encode_prompt(PROMPT))
    ids = generate(page, temperature=0, max_tokens=12)
    page.locator("#views [role=tab]", has_text="The loop").click()
    view = page.locator("#views .v-area .v-view")
    rows = view.locator("tbody tr")
    assert rows.count() == 12
    cells = rows.nth(0).locator("td").all_text_contents()
    assert cells[1] == "prefill" and rows.nth(5).locator("td").all_text_contents()[1] == "decode"
    assert rows.nth(0).locator("td").all_text_contents()[2] == str(n0 + 1)  # the prompt, then the first token
    assert rows.nth(5).locator("td").all_text_contents()[2] == "1"  # one new position read
    shot(view, "loop")
    view.locator("input[type=checkbox]").check()
    assert generate(page, temperature=0, max_tokens=12) == ids  # the same text, without the cache
    assert "Without the KV cache" in view.locator(".v-summary").text_content()
    assert rows.nth(5).locator("td").all_text_contents()[2] == str(n0 + 6)  # everything read again
    shot(view, "loop-without-cache")
    view.locator("input[type=checkbox]").uncheck()


def test_a_closed_view_asks_nothing(page):
    if page.locator("#views .v-close").is_visible():
        page.locator("#views .v-close").click()
    # Count the explain messages the page's worker receives while a generation runs, views closed.
    page.evaluate("""async () => {
        const { GPT2Client } = await import('/client.js');
        const c = GPT2Client.shared(new URL('/worker.js', location.href));
        window.__explains = 0;
        const post = c.worker.postMessage.bind(c.worker);
        c.worker.postMessage = (m) => { if (m.type === 'explain' || m.type === 'score') window.__explains += 1; post(m); };
    }""")
    generate(page, temperature=0, max_tokens=8)
    page.click("#tokens .chip >> nth=1")
    assert page.evaluate("window.__explains") == 0
    open_view(page, "Layer by layer")
    assert page.evaluate("window.__explains") == 1


# --------------------------------------------------------------------------- the widget modes

DOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Views</title><link rel="icon" href="data:,">
<script type="module" src="{widget}"></script></head>
<body>
<gpt2-widget id="sampling" mode="sampling" model="shipped" prompt="{prompt}" temperature="0.8" top-k="10" seed="4"></gpt2-widget>
<gpt2-widget id="attention" mode="attention" model="shipped" prompt="{prompt}"></gpt2-widget>
<gpt2-widget id="lens" mode="lens" model="shipped" prompt="{prompt}"></gpt2-widget>
<gpt2-widget id="embeddings" mode="embeddings" model="shipped" prompt=" God"></gpt2-widget>
<gpt2-widget id="score" mode="score" model="shipped" prompt="{prompt}"></gpt2-widget>
</body></html>"""


@pytest.fixture(scope="module")
def doc(browser, server, tmp_path_factory):
    root = tmp_path_factory.mktemp("views-doc")
    (root / "index.html").write_text(DOC.format(widget=f"{server}widget.js", prompt=PROMPT))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    context = browser.new_context(viewport={"width": 1000, "height": 900}, service_workers="block")
    context.set_default_timeout(60_000)
    pg = context.new_page()
    pg.on("console", lambda m: m.type == "error" and print("console:", m.text))
    pg.goto(f"http://127.0.0.1:{httpd.server_address[1]}/", wait_until="domcontentloaded")
    yield pg
    context.close()
    httpd.shutdown()


def widget_drawn(pg, wid):
    pg.wait_for_function("w => Number(document.getElementById(w).shadowRoot.querySelector('.v-view')?.dataset.draws ?? 0) > 0",
                         arg=wid, timeout=BOOT_TIMEOUT)
    return pg.locator(f"#{wid}")


def test_widget_modes_show_the_clis_numbers(doc, ref, shipped, capsys):
    w = widget_drawn(doc, "attention")
    n_layer = ref.model.config.n_layer
    want = cli(capsys, "attention", PROMPT, "--layer", str(n_layer - 1), "--json", "--model", str(shipped))
    got = [float(d["w"]) for d in data(doc, "#attention .v-achip")]
    assert_rel(got, want["weights"][-1], abs_=1e-6)
    assert w.locator("table caption").text_content().startswith("Attention")
    shot(w, "widget-attention")

    w = widget_drawn(doc, "lens")
    want = cli(capsys, "lens", PROMPT, "--top", "5", "--json", "--model", str(shipped))
    cells = doc.eval_on_selector_all("#lens .v-lcell", "els => els.map(e => [Number(e.dataset.id), Number(e.dataset.prob)])")
    assert [c[0] for c in cells] == [t["id"] for L in want["layers"] for t in L["top"]]
    assert_rel([c[1] for c in cells], [t["prob"] for L in want["layers"] for t in L["top"]])
    shot(w, "widget-lens")

    w = widget_drawn(doc, "embeddings")
    want = cli(capsys, "neighbors", " God", "--top", "10", "--json", "--model", str(shipped))
    got = data(doc, "#embeddings .v-nrow")
    assert [int(g["id"]) for g in got] == [n["id"] for n in want["neighbors"]]
    assert_rel([g["cos"] for g in got], [n["cosine"] for n in want["neighbors"]])
    shot(w, "widget-embeddings")

    w = widget_drawn(doc, "score")
    want = cli(capsys, "score", PROMPT, "--json", "--model", str(shipped))
    got = data(doc, "#score .v-st")
    assert [int(g["rank"]) for g in got] == [t["rank"] for t in want["tokens"]]
    assert_rel([g["prob"] for g in got], [t["prob"] for t in want["tokens"]])
    shot(w, "widget-score")

    w = widget_drawn(doc, "sampling")
    logits = Trace(ref.model, ref.encode_prompt(PROMPT)).logits()
    want = sampling_view(logits, SamplingParams(0.8, 10, 1.0, 4), top=30)
    rows = data(doc, "#sampling .v-srow")
    assert_rel([r["share"] for r in rows], [r["sample_prob"] for r in want["rows"]])
    # The lens's last row is `next`, as the CLI prints it.
    nxt = cli(capsys, "next", PROMPT, "--top", "5", "--json", "--model", str(shipped))
    assert [int(r["id"]) for r in rows[:5]] == [t["id"] for t in nxt]
    # Keyboard: the settings are sliders, the prompt re-draws on Ctrl+Enter.
    shot(w, "widget-sampling")


def test_widget_view_mistakes_are_readable(doc):
    widget_drawn(doc, "lens")
    doc.evaluate("() => { const w = document.getElementById('lens'); w.shadowRoot.querySelector('textarea').value = ''; "
                 "w.shadowRoot.querySelector('button.primary').click(); }")
    err = doc.evaluate("() => document.getElementById('lens').shadowRoot.querySelector('.v-error').textContent")
    assert "empty" in err


def test_lesson_page_uses_the_view_modes_under_the_policy(browser, server):
    """web/embed.html: its view-mode widgets draw (scrolled into view, they load lazily), with
    no Content-Security-Policy violation (the server's policy: no inline style or script)."""
    context = browser.new_context(viewport={"width": 1000, "height": 900}, service_workers="block")
    context.set_default_timeout(60_000)
    context.add_init_script("window.__violations = []; document.addEventListener('securitypolicyviolation', "
                            "(e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));")
    try:
        pg = context.new_page()
        pg.goto(f"{server}embed.html", wait_until="domcontentloaded")
        modes = pg.eval_on_selector_all("gpt2-widget[mode]", "els => els.map(e => [e.id, e.getAttribute('mode')])")
        views = [(i, m) for i, m in modes if m in ("sampling", "attention", "lens", "embeddings", "score")]
        assert len(views) >= 3
        for wid, mode in views:
            pg.locator(f"#{wid}").scroll_into_view_if_needed()
            widget_drawn(pg, wid)
            assert pg.locator(f"#{wid}").locator("table caption").first.text_content()
            shot(pg.locator(f"#{wid}"), f"embed-{mode}")
        assert pg.evaluate("window.__violations") == []
    finally:
        context.close()
