"""Writing the text yourself, in real Chromium against the real server (conftest.py): Step
shows token 1's candidates before anything is appended; rewriting from an earlier token keeps
the old text as a branch; branches switch and compare; a link rebuilds the same tokens and
bars in a fresh browser; bad links get a message; the model says what it is; errors leave
nothing stale; English and Chinese; a phone's layout; an axe-core scan of the page and the
example lesson page. Expected numbers come from the CPython engine on the same model.

Screenshots of each state go to test-artifacts/explore-*.png.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("playwright")

from gpt2web.sampling import SamplingParams  # noqa: E402

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
AXE = REPO / "build" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
BOOT_TIMEOUT = 120_000
# Page vs CPython, relative: float32 rounding of the logits (~1e-6); a flat model's small
# probabilities make an absolute tolerance meaningless. FLOOR lets an exact 0 (a cut share) be 0.
REL, FLOOR = 2e-5, 1e-12
PROMPT = "The cat sat on the"
SETTINGS = dict(temperature=0.9, top_k=30, top_p=1, seed=42, max_tokens=12)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CARD = {"description": "a 2-layer test model with random weights, GPT-2's own tokenizer",
        "examples": ["Once upon a time", "In the beginning"]}

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def card_model(weights_dir):
    """A copy of the test model whose manifest says what it is (description, examples)."""
    dst = weights_dir / "card"
    shutil.copytree(weights_dir / "demo", dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest.update(name="card", **CARD)
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=1))
    yield "card"
    shutil.rmtree(dst)


def new_context(browser, viewport=DESKTOP, **kw):
    context = browser.new_context(viewport=viewport, service_workers="block", **kw)
    context.set_default_timeout(30_000)
    return context


def open_page(context, url):
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and print("console:", m.text))
    page.on("pageerror", lambda e: print("pageerror:", e))
    page.goto(url, wait_until="domcontentloaded")
    return page


@pytest.fixture(scope="module")
def desk(browser, server, card_model):
    ARTIFACTS.mkdir(exist_ok=True)
    context = new_context(browser, locale="en-US")
    page = open_page(context, server)
    wait_ready(page)
    yield page
    context.close()


# --------------------------------------------------------------------------- helpers


def shot(page, name, full=True):
    page.screenshot(path=str(ARTIFACTS / f"explore-{name}.png"), full_page=full)


def wait_ready(page, model="demo"):
    page.wait_for_function(
        "m => document.querySelector('#model').value === m && "
        "document.querySelector('#status').dataset.state === 'ready'", arg=model, timeout=BOOT_TIMEOUT)


def set_settings(page, prompt=PROMPT, **over):
    s = {**SETTINGS, **over}
    page.fill("#prompt", prompt)
    for key in ("temperature", "top_k", "top_p", "seed", "max_tokens"):
        page.fill(f"#{key}", str(s[key]))


def chips(page) -> list[int]:
    return page.eval_on_selector_all("#tokens .chip", "els => els.map(e => Number(e.dataset.id))")


def bars(page) -> list[dict]:
    return page.eval_on_selector_all("#bars li.cand", """els => els.map(li => ({
        id: Number(li.dataset.id), prob: li.querySelector('meter').value, share: Number(li.dataset.share),
        chosen: li.classList.contains('chosen'),
        button: li.querySelector('button.tok')?.getAttribute('aria-label') ?? null}))""")


def assert_bars(shown, expected, chosen=None):
    assert [b["id"] for b in shown] == [c["id"] for c in expected]
    assert [b["prob"] for b in shown] == pytest.approx([c["prob"] for c in expected], rel=REL, abs=FLOOR)
    assert [b["share"] for b in shown] == pytest.approx([c["sample_prob"] for c in expected], rel=REL, abs=FLOOR)
    if chosen is not None:
        assert [b["chosen"] for b in shown] == [c["chosen"] for c in expected]


def idle(page, timeout=60_000):
    """The worker has answered everything sent (the Stop/Step buttons settle, the link is written)."""
    page.wait_for_function("() => !['generating', 'loading', 'starting'].includes("
                           "document.querySelector('#status').dataset.state) || "
                           "document.querySelector('#cand-title').textContent.includes('your pick')",
                           timeout=timeout)


def wait_pick(page, n):
    page.wait_for_function("n => document.querySelector('#cand-title').textContent === `Token ${n}: your pick`"
                           " && document.querySelectorAll('#bars button.tok').length > 0", arg=n, timeout=60_000)


def wait_chips(page, n):
    page.wait_for_function("n => document.querySelectorAll('#tokens .chip').length === n", arg=n, timeout=60_000)


def generation(engine, prompt=PROMPT, **over):
    s = {**SETTINGS, **over}
    return engine.generate(prompt, SamplingParams(s["temperature"], s["top_k"], s["top_p"], s["seed"]),
                           max_tokens=s["max_tokens"], n_candidates=10)


def replay(engine, ids, **over):
    gen = generation(engine, **over)
    return gen, [gen.step(forced_id=i) for i in ids]


# --------------------------------------------------------------------------- what model this is


def test_the_page_says_what_model_it_runs(desk, card_model):
    page = desk
    # No "GPT-2" claims for a model that is not GPT-2: the title and heading are neutral.
    assert "GPT-2" not in page.title() and "GPT-2" not in page.inner_text("h1")
    # The test "demo" manifest has no description or examples: no line, the default prompt.
    assert page.is_hidden("#about") and page.is_hidden("#examples")
    assert page.input_value("#prompt") == "Once upon a time"
    page.select_option("#model", card_model)
    wait_ready(page, card_model)
    assert page.is_visible("#about")
    assert page.inner_text("#about-name") == "card:"
    assert page.inner_text("#about-desc") == CARD["description"]
    examples = page.locator("#examples button.example")
    assert examples.all_inner_texts() == CARD["examples"]
    assert page.input_value("#prompt") == CARD["examples"][0]  # starts with the first example
    examples.nth(1).click()
    assert page.input_value("#prompt") == CARD["examples"][1]
    shot(page, "model-card")
    page.select_option("#model", "demo")
    wait_ready(page)
    assert page.is_hidden("#about") and page.is_hidden("#examples")


# --------------------------------------------------------------------------- Step and pick


def test_step_shows_token_one_and_lets_the_reader_pick_it(desk, engine):
    page = desk
    set_settings(page)
    page.get_by_role("button", name="Step", exact=True).click()
    wait_pick(page, 1)
    assert chips(page) == []  # nothing appended yet
    gen = generation(engine)
    first = bars(page)
    assert_bars(first, gen.peek()["candidates"])
    assert all(b["button"].startswith("append ") for b in first)
    shot(page, "step-token-1")
    # Keyboard: focus the first candidate, two arrows down, Enter picks the third.
    page.locator("#bars button.tok").first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.closest('li.cand').dataset.id") == str(first[2]["id"])
    page.keyboard.press("Enter")
    wait_chips(page, 1)
    wait_pick(page, 2)
    assert chips(page) == [first[2]["id"]]
    s1 = gen.step(forced_id=first[2]["id"])
    assert_bars(bars(page), gen.peek()["candidates"])
    # The focus went on to the next list, so the keyboard can keep picking.
    assert page.evaluate("document.activeElement.matches('#bars button.tok')")
    # Step again: the sampler picks token 2, as the CPython engine does with the same seed.
    page.get_by_role("button", name="Step", exact=True).click()
    wait_chips(page, 2)
    wait_pick(page, 3)
    s2 = gen.step()
    assert chips(page) == [s1["id"], s2["id"]]
    # And with the mouse, a pick by its accessible name.
    third = bars(page)[1]
    page.get_by_role("button", name=third["button"], exact=True).click()
    wait_chips(page, 3)
    wait_pick(page, 4)
    assert chips(page)[2] == third["id"]
    shot(page, "step-picked")


def test_rewrite_from_an_earlier_token_and_switch_branches(desk, engine):
    page = desk
    for _ in range(2):  # two more tokens by the sampler
        n = len(chips(page))
        page.get_by_role("button", name="Step", exact=True).click()
        wait_chips(page, n + 1)
        wait_pick(page, n + 2)
    original = chips(page)
    assert len(original) == 5
    # Click token 2, rewrite from there with another candidate.
    page.click("#tokens .chip[data-index='1']")
    page.get_by_role("button", name="rewrite from token 2", exact=True).click()
    offered = bars(page)
    assert all(b["button"].startswith("rewrite with ") for b in offered)
    other = next(b for b in offered if b["id"] != original[1])
    page.get_by_role("button", name=other["button"], exact=True).click()
    wait_chips(page, 2)
    wait_pick(page, 3)
    assert chips(page) == [original[0], other["id"]]
    gen, steps = replay(engine, [original[0], other["id"]])
    assert_bars(bars(page), gen.peek()["candidates"])
    shown = page.eval_on_selector_all("#tokens .chip", "els => els.map(e => e.getAttribute('aria-label'))")
    assert shown[1].startswith("token 2: ")
    # The old text is a branch: two branches, the new one current.
    assert page.locator("#branches button.branch").all_inner_texts() == ["Branch 1", "Branch 2"]
    assert page.get_attribute("#branches li[data-branch='2'] > button.branch", "aria-pressed") == "true"
    # One more token on the new branch, then back to branch 1: its tokens and bars again.
    page.get_by_role("button", name="Step", exact=True).click()
    wait_chips(page, 3)
    wait_pick(page, 4)
    branch2 = chips(page)
    shot(page, "rewritten")
    page.get_by_role("button", name="Branch 1", exact=True).click()
    wait_chips(page, 5)
    wait_pick(page, 6)
    assert chips(page) == original
    gen1, _ = replay(engine, original)
    assert_bars(bars(page), gen1.peek()["candidates"])
    # Branch 1 goes on from its own last token (the worker replayed it).
    pick = bars(page)[0]
    page.get_by_role("button", name=pick["button"], exact=True).click()
    wait_chips(page, 6)
    wait_pick(page, 7)
    gen1.step(forced_id=pick["id"])
    assert_bars(bars(page), gen1.peek()["candidates"])
    original = chips(page)
    # Compare the two side by side from where they part, with probabilities.
    page.get_by_role("button", name="compare branch 2 with branch 1", exact=True).click()
    rows = page.eval_on_selector_all("#compare tbody tr", """rs => rs.map(r => ({
        n: r.children[0].textContent,
        a: r.children[1].dataset.prob ? Number(r.children[1].dataset.prob) : null,
        b: r.children[2].dataset.prob ? Number(r.children[2].dataset.prob) : null}))""")
    assert [r["n"] for r in rows] == [str(i + 1) for i in range(1, len(original))]  # from token 2 on
    _, ref1 = replay(engine, original)
    _, ref2 = replay(engine, branch2)
    # Column a is the current branch (1), column b the compared one (2).
    assert [r["a"] for r in rows] == pytest.approx([s["prob"] for s in ref1[1:]], rel=REL, abs=FLOOR)
    assert [r["b"] for r in rows[:len(branch2) - 1]] == pytest.approx([s["prob"] for s in ref2[1:]], rel=REL, abs=FLOOR)
    assert all(r["b"] is None for r in rows[len(branch2) - 1:])
    shot(page, "compare")
    page.get_by_role("button", name="Branch 2", exact=True).click()
    wait_chips(page, 3)
    assert chips(page) == branch2


# --------------------------------------------------------------------------- links


def read_link(page):
    page.wait_for_function("() => document.querySelector('#link').value.includes('#v=1')")
    return page.input_value("#link")


def test_a_copied_link_rebuilds_the_same_tokens_in_a_fresh_browser(desk, browser, engine):
    page = desk
    ids = chips(page)  # branch 2 of the test before: a rewritten text
    # The link follows the text shown once the worker holds it again (after the switch).
    page.wait_for_function("ids => document.querySelector('#link').value.endsWith('&ids=' + ids)",
                           arg=".".join(map(str, ids)))
    wait_pick(page, len(ids) + 1)
    shown_upcoming = bars(page)
    link = read_link(page)
    page.get_by_role("button", name="Copy link", exact=True).click()
    assert page.inner_text("#link-note") != ""
    context = new_context(browser, locale="en-US")  # another browser: no state shared
    try:
        other = open_page(context, link)
        wait_chips(other, len(ids))
        wait_pick(other, len(ids) + 1)
        assert chips(other) == ids
        other.wait_for_function("() => document.querySelector('#status').dataset.state === 'done'")
        assert other.inner_text("#status").startswith(f"Rebuilt from the link: {len(ids)} tokens")
        assert other.input_value("#prompt") == PROMPT
        assert other.input_value("#seed") == str(SETTINGS["seed"])
        assert other.input_value("#temperature") == str(SETTINGS["temperature"])
        # The same bars: for the token to come and for every token, as in the first browser.
        assert [b["id"] for b in bars(other)] == [b["id"] for b in shown_upcoming]
        assert [b["prob"] for b in bars(other)] == pytest.approx([b["prob"] for b in shown_upcoming], rel=REL, abs=FLOOR)
        _, steps = replay(engine, ids)
        for i in range(len(ids)):
            other.click(f"#tokens .chip[data-index='{i}']")
            assert_bars(bars(other), steps[i]["candidates"], chosen=True)
        shot(other, "from-link")
    finally:
        context.close()


@pytest.mark.parametrize("fragment, words", [
    ("#v=0&model=demo&prompt=Hi", "another version"),
    ("#v=1&model=nowhere&prompt=Hi&temperature=1&top_k=0&top_p=1&max_tokens=5", "does not have"),
    ("#v=1&model=demo&prompt=Hi&temperature=99&top_k=0&top_p=1&max_tokens=5", "Temperature"),
    ("#v=1&model=demo&prompt=Hi&temperature=1&top_k=0&top_p=1&max_tokens=5&ids=1.x.3", "token ids"),
    ("#v=1&model=demo&prompt=Hi&temperature=1&top_k=0&top_p=1&max_tokens=2&ids=1.2.3", "max tokens"),
    ("#hello", "not a gpt2web link"),
])
def test_a_bad_link_gets_a_message_and_a_clean_start(browser, server, fragment, words):
    context = new_context(browser, locale="en-US")
    try:
        page = open_page(context, server + fragment)
        page.wait_for_selector("#error:not([hidden])", timeout=BOOT_TIMEOUT)
        assert page.get_attribute("#error", "data-kind") == "link"
        assert words in page.inner_text("#error"), page.inner_text("#error")
        assert page.evaluate("location.hash") == ""  # the bad link is gone from the address
        wait_ready(page)
        assert chips(page) == [] and page.input_value("#prompt") == "Once upon a time"
        if fragment.startswith("#v=0"):
            shot(page, "bad-link")
        page.get_by_role("button", name="Step", exact=True).click()  # the page works
        wait_pick(page, 1)
    finally:
        context.close()


def test_a_link_whose_token_the_model_lacks_fails_cleanly(browser, server):
    context = new_context(browser, locale="en-US")
    try:
        page = open_page(context, server + "#v=1&model=demo&prompt=Hi&temperature=1&top_k=0&top_p=1"
                         "&max_tokens=5&ids=999999")
        page.wait_for_selector("#error:not([hidden])", timeout=BOOT_TIMEOUT)
        assert page.get_attribute("#error", "data-kind") == "link"
        assert "not in the vocabulary" in page.inner_text("#error")
        assert page.evaluate("location.hash") == "" and chips(page) == []
    finally:
        context.close()


# --------------------------------------------------------------------------- clean state


def test_an_error_leaves_nothing_stale(desk, engine):
    page = desk
    set_settings(page, max_tokens=4)
    page.click("#generate")
    page.wait_for_function("() => document.querySelector('#status').dataset.state === 'done'")
    assert len(chips(page)) == 4 and bars(page)
    page.fill("#prompt", "")
    page.click("#generate")
    assert "prompt is empty" in page.inner_text("#param-error")
    assert chips(page) == [] and bars(page) == [] and page.inner_text("#text") == ""
    assert page.get_attribute("#status", "data-state") == "error"
    assert "Waiting" not in page.inner_text("#cand-note")
    assert page.is_hidden("#link-box") and page.evaluate("location.hash") == ""
    # An overlong prompt: the engine says so; no old bars, no "Waiting for the first token".
    set_settings(page, prompt="the " * 600, max_tokens=4)
    page.click("#generate")
    page.wait_for_selector("#error:not([hidden])")
    assert page.get_attribute("#error", "data-kind") == "prompt"
    assert "tokens long" in page.inner_text("#error")
    assert bars(page) == [] and chips(page) == []
    assert page.inner_text("#cand-note") == "No candidates: see the message above."
    assert page.get_attribute("#status", "data-state") == "error"
    shot(page, "error-clean")
    # Fixed: the next run starts clean, with its own bars only.
    set_settings(page, max_tokens=3)
    page.click("#generate")
    page.wait_for_function("() => document.querySelector('#status').dataset.state === 'done'")
    assert page.is_hidden("#error") and len(chips(page)) == 3


# --------------------------------------------------------------------------- two languages


def test_the_page_in_chinese_and_back(browser, server, engine):
    context = new_context(browser, locale="zh-CN")  # navigator.language: zh-CN
    try:
        page = open_page(context, server)
        wait_ready(page)
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        assert page.inner_text("h1") == "看语言模型如何挑选下一个词元"
        assert page.input_value("#lang") == "zh-CN"
        page.get_by_role("button", name="单步", exact=True).click()
        page.wait_for_function("() => document.querySelector('#cand-title').textContent === '第 1 个词元：由你来选'"
                               " && document.querySelectorAll('#bars button.tok').length", timeout=60_000)
        assert page.locator("#bars button.tok").first.get_attribute("aria-label").startswith("接上 ")
        gen = generation(engine, prompt=page.input_value("#prompt"), temperature=1, top_k=40, top_p=1, seed=None,
                         max_tokens=40)
        assert [b["id"] for b in bars(page)] == [c["id"] for c in gen.peek()["candidates"]]
        # Tokens are shown as they are: the bars' labels are the engine's token labels.
        labels = page.eval_on_selector_all("#bars li.cand .tok", "els => els.map(e => e.textContent)")
        assert labels == [c["token"] for c in gen.peek()["candidates"]]
        page.fill("#temperature", "-1")
        page.get_by_role("button", name="生成", exact=True).click()
        assert "温度" in page.inner_text("#param-error")
        page.fill("#temperature", "1")
        shot(page, "chinese")
        # The switch: English, and it stays English on the next visit.
        page.select_option("#lang", "en")
        assert page.inner_text("h1") == "Watch a language model pick the next token"
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.get_by_role("button", name="Generate", exact=True).is_visible()
        page.reload()
        wait_ready(page)
        assert page.inner_text("h1") == "Watch a language model pick the next token"
    finally:
        context.close()


def test_widget_events_once_and_its_lang_attribute(browser, server, engine):
    context = new_context(browser, locale="en-US")
    try:
        page = open_page(context, server + "embed.html")
        page.evaluate("""() => {
            window.seen = [];
            for (const type of ['gpt2-ready', 'gpt2-token', 'gpt2-done', 'gpt2-error']) {
                document.addEventListener(type, (e) => window.seen.push(
                    {type, id: e.target.id, config: type === 'gpt2-ready' ? e.detail.config : undefined}));
            }
            const next = document.createElement('gpt2-widget');
            next.id = 'n1';
            next.setAttribute('mode', 'next');
            next.setAttribute('prompt', 'And God said');
            const zh = document.createElement('gpt2-widget');
            zh.id = 'z1';
            zh.setAttribute('lang', 'zh-CN');
            zh.setAttribute('prompt', 'And God said');
            zh.setAttribute('seed', '3');
            zh.setAttribute('max-tokens', '3');
            document.querySelector('main').prepend(next, zh);
        }""")
        page.wait_for_function("() => document.getElementById('z1').state === 'ready'", timeout=BOOT_TIMEOUT)
        page.wait_for_selector("#n1 ol.bars li.cand", timeout=BOOT_TIMEOUT)
        page.wait_for_timeout(500)  # anything late would arrive now
        ready = [e for e in page.evaluate("window.seen") if e["type"] == "gpt2-ready"]
        per_widget = {}
        for e in ready:
            per_widget.setdefault(e["id"], []).append(e)
        assert len(per_widget["n1"]) == 1 and len(per_widget["z1"]) == 1, ready
        assert all(e["config"] and e["config"]["n_layer"] > 0 for e in ready)
        # The Chinese widget: its words in Chinese, the tokens as they are.
        z = page.locator("#z1")
        z.get_by_role("button", name="单步", exact=True).click()
        page.wait_for_selector("#z1 ol.bars li.cand button.tok")
        assert page.locator("#z1 .cand-title").inner_text() == "第 1 个词元：由你来选"
        assert page.locator("#z1 .chips li").count() == 0
        z.get_by_role("button", name="生成", exact=True).click()
        page.wait_for_function("() => document.getElementById('z1').state === 'done'")
        gen = engine.generate("And God said", SamplingParams(1, 40, 1, 3), max_tokens=3, n_candidates=5)
        assert page.eval_on_selector_all("#z1 .chip", "els => els.map(e => Number(e.dataset.id))") == \
            [s["id"] for s in gen]
        assert page.locator("#z1 .status").inner_text().startswith("完成")
        events = page.evaluate("window.seen")
        assert sum(e["type"] == "gpt2-done" and e["id"] == "z1" for e in events) == 1
        assert sum(e["type"] == "gpt2-token" and e["id"] == "z1" for e in events) == 3
        page.locator("#z1").scroll_into_view_if_needed()
        shot(page, "widget-chinese", full=False)
        # A problem clears what it makes stale, in the widget too (and says so in Chinese).
        z.get_by_label("提示词", exact=True).fill("")
        z.get_by_role("button", name="生成", exact=True).click()
        assert "提示词是空的" in page.locator("#z1 .param-error").inner_text()
        assert page.locator("#z1 .chips li").count() == 0 and page.locator("#z1 ol.bars li.cand").count() == 0
        assert page.evaluate("() => document.getElementById('z1').state") == "error"
    finally:
        context.close()


# --------------------------------------------------------------------------- phone


def in_view(page, selector):
    return page.evaluate("""s => { const r = document.querySelector(s).getBoundingClientRect();
        return r.top >= 0 && r.top < innerHeight && r.bottom > 0; }""", selector)


def small_targets(page):
    """Visible controls smaller than 44x44 CSS pixels (WCAG 2.5.5)."""
    return page.evaluate("""() => [...document.querySelectorAll('button, select, input, textarea, summary')]
        .filter(e => e.offsetParent !== null && !e.closest('#views'))
        .map(e => ({e, r: e.getBoundingClientRect()}))
        .filter(({r}) => r.width > 0 && (r.height < 44 || r.width < 44))
        .map(({e, r}) => `${e.tagName} ${e.id || e.className} ${e.textContent.slice(0, 20)} ${r.width}x${r.height}`)""")


def test_phone_layout_shows_the_bars_after_generate(browser, server):
    context = new_context(browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2,
                          locale="en-US")
    try:
        page = open_page(context, server)
        wait_ready(page)
        shot(page, "phone-start")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing cut off
        box = page.locator("#model").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        # The chosen option's text fits its box (the picker was cut off: "…16 MI").
        assert page.evaluate("""() => { const s = document.querySelector('#model');
            const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(s).font;
            return c.measureText(s.selectedOptions[0].text).width + 40 <= s.clientWidth; }""")
        assert small_targets(page) == []
        set_settings(page, max_tokens=6)
        page.get_by_role("button", name="Generate", exact=True).click()
        page.wait_for_function("() => document.querySelector('#status').dataset.state === 'done'", timeout=60_000)
        page.wait_for_timeout(600)  # a smooth scroll ends
        assert in_view(page, "#bars li.cand")  # the bars, right after Generate
        shot(page, "phone-generate", full=False)
        # One scale for the bars of a list: every meter is as long as the others.
        widths = page.eval_on_selector_all("#bars meter", "ms => ms.map(m => m.getBoundingClientRect().width)")
        assert len(set(round(w, 1) for w in widths)) == 1, widths
        page.get_by_role("button", name="Step", exact=True).click()
        wait_pick(page, 1)
        page.wait_for_timeout(600)
        assert in_view(page, "#bars li.cand")
        assert in_view(page, "#step")  # pressed again and again: it stays in reach too
        assert small_targets(page) == []
        shot(page, "phone-step", full=False)
        page.click("#tokens .chip[data-index='0']") if chips(page) else None
        shot(page, "phone-full")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()


def test_desktop_bars_share_one_scale(desk):
    # Top-k 3: the other rows say "excluded", wider than a percentage: the case where the
    # text column, sized per row, used to shorten some bars.
    set_settings(desk, top_k=3, max_tokens=2)
    desk.click("#generate")
    desk.wait_for_function("() => document.querySelector('#status').dataset.state === 'done'")
    texts = desk.eval_on_selector_all("#bars .share-text", "ps => ps.map(p => p.textContent)")
    assert "excluded" in texts and any(x.endswith("%") for x in texts), texts
    widths = desk.eval_on_selector_all("#bars meter", "ms => ms.map(m => m.getBoundingClientRect().width)")
    assert widths and len(set(round(w, 1) for w in widths)) == 1, (widths, texts)
    shot(desk, "one-scale")
    assert desk.is_visible(".space-hint")  # the "·" space marker is explained on the page
    assert "space" in desk.inner_text(".space-hint")


# --------------------------------------------------------------------------- accessibility


def axe_scan(page):
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("path, state", [("", "idle"), ("", "stepped"), ("embed.html", "generated"),
                                         ("embed.html", "phone")])
def test_axe_finds_no_serious_violation(browser, server, path, state):
    if not AXE.is_file():
        if shutil.which("npm") is None:
            pytest.skip("axe-core needs npm (scripts/setup_axe.sh)")
        pytest.fail("axe-core is missing: run bash scripts/setup_axe.sh (scripts/test.sh does)")
    context = new_context(browser, PHONE if state == "phone" else DESKTOP,  # a phone scrolls code sideways
                          bypass_csp=True, locale="en-US")  # axe is injected as a script
    try:
        page = open_page(context, server + path)
        if path == "":
            wait_ready(page)
            if state == "stepped":
                set_settings(page, max_tokens=6)
                page.click("#generate")
                page.wait_for_function("() => document.querySelector('#status').dataset.state === 'done'")
                page.click("#tokens .chip[data-index='1']")
                page.get_by_role("button", name="rewrite from token 2", exact=True).click()
                page.locator("#bars button.tok").nth(2).click()
                page.wait_for_function("() => document.querySelectorAll('#branches button.branch').length === 2")
                page.get_by_role("button", name="compare branch 1 with branch 2", exact=True).click()
        else:
            page.wait_for_function("() => document.getElementById('greedy').state === 'ready'", timeout=BOOT_TIMEOUT)
            page.locator("#greedy").get_by_role("button", name="Generate", exact=True).click()
            page.wait_for_function("() => document.getElementById('greedy').state === 'done'", timeout=60_000)
        problems = axe_scan(page)
        assert problems == [], problems
    finally:
        context.close()
