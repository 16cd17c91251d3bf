"""Build-time rendering (gpt2web.host.render): the first view's markup and numbers.

Run:  .venv/bin/python -m pytest -q tests/test_render.py
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "py"))

from gpt2web.engine import Engine  # noqa: E402
from gpt2web.host.render import RenderError, percent, render_widget, static_css  # noqa: E402
from gpt2web.sampling import SamplingParams  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    return Engine.load(REPO / "weights" / "demo")


def test_percent_is_the_pages(tmp_path):
    """The static text must be what web/bars.js writes for the same number."""
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    rng = random.Random(0)
    xs = [0.9996, 0.99949, 0.968, 0.1, 0.0999, 0.0042, 0.000031, 2.1e-9, 0.0, 1.0, 0.5, 0.04, 0.0396, 1e-5]
    xs += [rng.random() ** rng.choice([1, 3, 8, 20]) for _ in range(2000)]
    script = (f"import {{ percent }} from {json.dumps((REPO / 'web' / 'bars.js').as_uri())};\n"
              f"console.log(JSON.stringify({json.dumps(xs)}.map(percent)));\n")
    proc = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    js = json.loads(proc.stdout)
    assert [percent(x) for x in xs] == js


def test_next_view_has_the_engines_bars(engine):
    html = render_widget({"mode": "next", "prompt": "And God said", "candidates": 4})
    rows = engine.next_tokens("And God said", top=4)
    meters = re.findall(r'<meter min="0" max="1" value="([^"]+)" aria-label="([^"]*)"', html)
    assert [float(v) for v, _ in meters] == [r["prob"] for r in rows]
    assert [label for _, label in meters] == [r["token"].replace('"', "&quot;") for r in rows]
    assert html.startswith('<gpt2-widget mode="next" prompt="And God said" candidates="4">')
    assert 'data-view="next"' in html
    assert "style=" not in html and "<script" not in html


def test_generate_view_is_the_seeded_generation(engine):
    attrs = {"prompt": "In the beginning", "max_tokens": 6, "temperature": 0.8, "top_k": 40, "seed": 3,
             "candidates": 3}
    html = render_widget(attrs)
    gen = engine.generate("In the beginning", SamplingParams(0.8, 40, 1.0, 3), max_tokens=6, n_candidates=3)
    steps = list(gen)
    chips = [int(i) for i in re.findall(r'<span class="chip[^"]*" data-index="\d+" data-id="(\d+)"', html)]
    assert chips == gen.ids
    shown, _, outside = html.partition('class="bars outside"')
    last = re.findall(r'<li class="cand[^"]*" data-id="(\d+)" data-prob="([^"]+)" data-share="([^"]+)"', shown)
    assert [(int(i), float(p), float(s)) for i, p, s in last] == \
        [(c["id"], c["prob"], c["sample_prob"]) for c in steps[-1]["candidates"]]
    assert "seed 3" in html and 'data-view="generate"' in html
    if not any(c["chosen"] for c in steps[-1]["candidates"]):  # the chosen token, drawn on its own
        assert f'data-id="{steps[-1]["id"]}"' in outside and "chosen-mark" in outside
    # No seed (and sampling): no fixed first view, the idle widget.
    idle = render_widget({"prompt": "In the beginning"})
    assert 'data-view="idle"' in idle and "<meter" not in idle


@pytest.mark.parametrize("attrs, message", [
    ({"mode": "chat"}, "mode must be 'generate' or 'next'"),
    ({"prompt": ""}, "the prompt is empty"),
    ({"seed": "-1"}, "seed must be a whole number"),
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"top_p": 0}, "top-p must be more than 0"),
    ({"candidates": 0}, "candidates must be from 1 to 100"),
    ({"max_tokens": 5000}, "max-tokens must be from 1 to 1024"),
    ({"model": "nope"}, "no model 'nope'"),
    ({"colour": "red"}, "unknown widget attribute 'colour'"),
    ({"theme": "pink"}, "theme must be 'light', 'dark' or 'auto'"),
    ({"settings": "shut"}, "settings must be 'open' or 'none'"),
])
def test_bad_attributes_are_one_line(attrs, message):
    with pytest.raises(RenderError, match=re.escape(message)) as e:
        render_widget({"prompt": "In the beginning", "seed": 1, **attrs})
    assert "\n" not in str(e.value)


def test_cli(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "gpt2web.host.cli", "render", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(REPO / "py")})
    ok = run("--mode", "next", "--prompt", "And God said", "--candidates", "3")
    assert ok.returncode == 0 and ok.stdout.count("<meter") == 3
    bad = run("--mode", "next", "--prompt", "And God said", "--candidates", "300")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "gpt2web render: error: candidates must be from 1 to 100, got '300'"]
    css = run("--stylesheet")
    assert css.returncode == 0 and css.stdout == static_css()


def test_stylesheet_is_the_widgets_scoped():
    css = static_css()
    assert "gpt2-widget > .gpt2-static:not(#gpt2web-static) .cand {" in css
    assert 'gpt2-widget[theme="dark"] > .gpt2-static:not(#gpt2web-static) {' in css
    assert ":host" not in css and "${" not in css and "url(" not in css
