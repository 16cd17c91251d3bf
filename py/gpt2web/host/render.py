"""Build-time rendering: a widget's first view as real HTML, computed by the same engine.

``render_widget(attrs)`` returns a ``<gpt2-widget>`` element whose children are its first
view: the next-token table of its prompt (``mode="next"``), or a seeded generation with the
candidates of its last token (``mode="generate"`` with a ``seed``, or ``temperature="0"``).
The bars are the same accessible ``<meter>`` rows the live widget draws (web/bars.js), with
the numbers the CPython engine computes, which are the browser's numbers (same engine, same
seed). A generation without a seed has no fixed first view: then the idle widget is drawn.

The reader sees these bars at once, with JavaScript off too (``static_css()`` styles them; it
is the widget's own stylesheet, scoped to the static view). The widget (web/widget.js) shows
them through a slot and starts the runtime only when the reader clicks it (or at once with
``loading="eager"``), then swaps its live view in.

No inline script or style is written: the markup works under
``script-src 'self'; style-src 'self'``.

Command line: ``gpt2web render --prompt "In the beginning" --mode next`` (``--stylesheet``
prints the CSS).
"""

from __future__ import annotations

import functools
import hashlib
import html
import math
import re
from pathlib import Path

# The widget's attributes, with the live widget's defaults (web/widget.js).
ATTRIBUTES = ("model", "prompt", "mode", "max-tokens", "temperature", "top-k", "top-p", "seed",
              "candidates", "settings", "loading", "theme", "label")
DEFAULTS = {"model": "demo", "prompt": "In the beginning", "mode": "generate", "max-tokens": "20",
            "temperature": "1", "top-k": "40", "top-p": "1", "seed": "", "candidates": "5"}
MAX_NEW_TOKENS = 1024
MAX_SEED = (1 << 63) - 1
EOT_ID = 50256

REASONS = {  # web/settings.js
    "eot": "the model wrote <|endoftext|>",
    "max_tokens": "max tokens reached",
    "context_full": "the context window is full",
}

STYLESHEET = "gpt2web-static.css"  # the file name integrations publish static_css() under


class RenderError(ValueError):
    """A bad attribute or model: one line, naming it."""


# ---------------------------------------------------------------- numbers as the page shows them


def _js_number(x: float) -> str:
    """A number as JavaScript's String(x) writes it, for the magnitudes used here."""
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    return repr(x)


def percent(p: float) -> str:
    """web/bars.js percent(): 96.8%, 0.42%, 0.0031%, 2.1e-7%."""
    x = p * 100
    if 99.95 <= x < 100:
        return ">99.9%"
    if x >= 10:
        return f"{x:.1f}%"
    if x >= 0.001:
        return f"{_js_number(float(f'{x:.2g}'))}%"
    if x == 0:
        return "0%"
    mant, exp = f"{x:.1e}".split("e")
    return f"{mant}e{int(exp):+d}%"


def _num(p: float) -> str:
    return repr(float(p))


# ---------------------------------------------------------------- attributes


def check_attrs(attrs: dict) -> dict:
    """The attributes as strings, unknown ones refused, values checked like the widget does."""
    out = {}
    for k, v in attrs.items():
        key = str(k).replace("_", "-")
        if key not in ATTRIBUTES:
            raise RenderError(f"unknown widget attribute {k!r} (known: {', '.join(ATTRIBUTES)})")
        if v is None:
            continue
        out[key] = str(v).strip() if key != "prompt" else str(v)
    a = {**DEFAULTS, **out}
    if a["mode"] not in ("generate", "next"):
        raise RenderError(f"mode must be 'generate' or 'next', got {a['mode']!r}")
    if a["prompt"] == "":
        raise RenderError("the prompt is empty")

    def number(key, kind=float):
        try:
            x = kind(a[key])
        except ValueError:
            raise RenderError(f"{key} must be {'a whole number' if kind is int else 'a number'}, "
                              f"got {a[key]!r}") from None
        if kind is float and not math.isfinite(x):
            raise RenderError(f"{key} must be a finite number, got {a[key]!r}")
        return x

    checked = {"mode": a["mode"], "prompt": a["prompt"], "model": a["model"] or DEFAULTS["model"]}
    checked["candidates"] = number("candidates", int)
    if not 1 <= checked["candidates"] <= 100:
        raise RenderError(f"candidates must be from 1 to 100, got {a['candidates']!r}")
    if a["mode"] == "generate":
        t, k, p, m = number("temperature"), number("top-k", int), number("top-p"), number("max-tokens", int)
        if not 0 <= t <= 10:
            raise RenderError(f"temperature must be between 0 and 10, got {a['temperature']!r}")
        if k < 0:
            raise RenderError(f"top-k must be a whole number >= 0, got {a['top-k']!r}")
        if not 0 < p <= 1:
            raise RenderError(f"top-p must be more than 0 and at most 1, got {a['top-p']!r}")
        if not 1 <= m <= MAX_NEW_TOKENS:
            raise RenderError(f"max-tokens must be from 1 to {MAX_NEW_TOKENS}, got {a['max-tokens']!r}")
        seed = None
        if a["seed"] != "":
            if not re.fullmatch(r"\d+", a["seed"]) or int(a["seed"]) > MAX_SEED:
                raise RenderError(f"seed must be a whole number from 0 to 2^63-1, got {a['seed']!r}")
            seed = int(a["seed"])
        checked.update(temperature=t, top_k=k, top_p=p, max_tokens=m, seed=seed)
    if a.get("loading", "") not in ("", "lazy", "eager"):
        raise RenderError(f"loading must be 'lazy' or 'eager', got {a['loading']!r}")
    if a.get("theme", "") not in ("", "light", "dark", "auto"):
        raise RenderError(f"theme must be 'light', 'dark' or 'auto', got {a['theme']!r}")
    if a.get("settings", "") not in ("", "open", "none"):
        raise RenderError(f"settings must be 'open' or 'none', got {a['settings']!r}")
    return {"attrs": out, **checked}


# ---------------------------------------------------------------- the engine


@functools.lru_cache(maxsize=8)
def _engine_at(path: str, mtime: float):
    from ..engine import Engine

    return Engine.load(path)


def model_folder(model: str, weights: Path | str | None = None) -> Path:
    """The folder of model ``model`` (a name under ``weights``, default the package's)."""
    from .paths import weights_dir

    base = Path(weights) if weights is not None else weights_dir()
    folder = base / model
    if not (folder / "manifest.json").is_file():
        have = sorted(p.parent.name for p in base.glob("*/manifest.json")) if base.is_dir() else []
        raise RenderError(f"no model {model!r} in {base} (have: {', '.join(have) or 'none'})")
    return folder


def engine_for(model: str, weights: Path | str | None = None):
    folder = model_folder(model, weights)
    manifest = folder / "manifest.json"
    return _engine_at(str(folder.resolve()), manifest.stat().st_mtime)


def model_card(model: str, weights: Path | str | None = None) -> dict:
    """web/about.js modelCard(): the manifest's name, description and example prompts."""
    import json

    m = json.loads((model_folder(model, weights) / "manifest.json").read_text(encoding="utf-8"))
    examples = m.get("examples") if isinstance(m.get("examples"), list) else []
    description = m.get("description") if isinstance(m.get("description"), str) else ""
    return {"name": m.get("name") or model, "description": description.strip() or None,
            "examples": [e for e in examples if isinstance(e, str) and e]}


def first_view(attrs: dict, weights: Path | str | None = None) -> dict:
    """What the widget's first view shows: {"view": "next"|"generate"|"idle", ...numbers}."""
    a = check_attrs(attrs)
    a["card"] = model_card(a["model"], weights)
    if a["mode"] == "generate" and a["seed"] is None and a["temperature"] != 0:
        return {"view": "idle", **a}
    eng = engine_for(a["model"], weights)
    from ..engine import PromptError
    from ..sampling import SamplingError, SamplingParams

    try:
        if a["mode"] == "next":
            rows = eng.next_tokens(a["prompt"], top=a["candidates"])
            return {"view": "next", "tokens": rows, **a}
        params = SamplingParams(temperature=a["temperature"], top_k=a["top_k"], top_p=a["top_p"],
                                seed=a["seed"]).validate()
        gen = eng.generate(a["prompt"], params, max_tokens=a["max_tokens"], n_candidates=a["candidates"])
        steps = list(gen)
    except (PromptError, SamplingError) as e:
        raise RenderError(f"prompt {a['prompt']!r}: {e}") from None
    return {"view": "generate", "steps": steps, "text": gen.text, "reason": gen.reason, "seed": gen.seed, **a}


# ---------------------------------------------------------------- markup (mirrors web/widget.js, web/bars.js)

E = functools.partial(html.escape, quote=True)


def _token_text(label: str) -> str:
    """bars.js setTokenText(): the label, each space marked."""
    return "".join('<span class="sp"> </span>' if part == " " else E(part)
                   for part in re.split(r"( )", label) if part)


def _candidate_row(c: dict) -> str:
    chosen = bool(c.get("chosen"))
    share = c.get("sample_prob")
    attrs = f' data-id="{int(c["id"])}" data-prob="{_num(c["prob"])}"'
    if share is not None:
        attrs += f' data-share="{_num(share)}"'
    parts = [
        f'<span class="tok" title="id {int(c["id"])}">{_token_text(c["token"])}</span>',
        f'<meter min="0" max="1" value="{_num(c["prob"])}" aria-label="{E(c["token"])}" '
        f'title="{E(percent(c["prob"]))} under the model"></meter>',
        f'<span class="prob">{E(percent(c["prob"]))}</span>',
    ]
    if share is not None:
        # The share bar: a <meter> too, since a width would need an inline style (CSP).
        bar = f'<meter class="share-bar" min="0" max="1" value="{_num(share)}"></meter>' if share > 0 else ""
        parts.append(f'<span class="share-track" aria-hidden="true">{bar}</span>')
        text = percent(share) if share > 0 else "excluded"
        title = "share after temperature, top-k, top-p" if share > 0 else "top-k / top-p leave it out"
        parts.append(f'<span class="share-text" title="{title}">{E(text)}</span>')
    if chosen:
        parts.append('<span class="chosen-mark">chosen</span>')
    return f'<li class="cand{" chosen" if chosen else ""}"{attrs}>{"".join(parts)}</li>'


def _bars(candidates: list[dict], shown_mass: float, ids: str) -> str:
    rows = "".join(_candidate_row(c) for c in candidates)
    return (f'<ol class="bars" aria-labelledby="{ids}-cand-title" aria-describedby="{ids}-cand-note">{rows}</ol>'
            f'<p class="other">other tokens: {E(percent(max(0.0, 1 - shown_mass)))}</p>')


def _whole_utf8(hex_bytes: str) -> bool:
    try:
        bytes.fromhex(hex_bytes).decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _chip(step: dict) -> str:
    cls = "chip"
    if step["id"] == EOT_ID:
        cls += " eot"
    if not _whole_utf8(step["bytes"]):
        cls += " partial"
    hexpairs = " ".join(re.findall("..", step["bytes"]))
    title = (f"token #{step['index'] + 1} · id {step['id']} · bytes {hexpairs} · "
             f"p {percent(step['prob'])} (rank {step['rank']})")
    return (f'<li><span class="chip" data-index="{step["index"]}" data-id="{step["id"]}" title="{E(title)}">'
            f'{_token_text(step["token"])}</span></li>')


def _legend(share: bool) -> str:
    out = '<span><i class="swatch model"></i>probability under the model</span>'
    if share:
        out += '<span><i class="swatch share"></i>share after temperature, top-k, top-p</span>'
    return f'<div class="legend" aria-hidden="true">{out}</div>'


def _summary(a: dict) -> str:
    raw = {**DEFAULTS, **a["attrs"]}
    top_p = raw["top-p"]
    return (f"temperature {raw['temperature']} · top-k {raw['top-k']}"
            + (f" · top-p {top_p}" if top_p and float(top_p) != 1 else "")
            + f" · {'seed ' + raw['seed'] if raw['seed'] else 'random seed'} · {raw['max-tokens']} tokens")


def _static_view(v: dict, ids: str) -> str:
    a = v
    next_mode = a["mode"] == "next"
    prompt = a["prompt"]
    card = a["card"]
    left = [f'<label for="{ids}-prompt">Prompt</label>',
            f'<textarea id="{ids}-prompt" rows="2" readonly spellcheck="false" '
            f'aria-describedby="{ids}-prompt-hint">{E(prompt)}</textarea>']
    if card["examples"]:  # about.js drawExamples()
        left.append('<div class="examples"><span>Try:</span>' + "".join(
            f'<button type="button" class="example">{E(e)}</button>' for e in card["examples"]) + "</div>")
    right = []
    if next_mode:
        left.append(f'<p class="hint" id="{ids}-prompt-hint">Worked out when this page was built. Show next '
                    'token runs the model in your browser; then edit the prompt to see the table change.</p>')
        left.append('<div class="buttons"><button type="button" class="primary" data-gpt2-run>'
                    'Show next token</button></div>')
        tokens = v["tokens"]
        tail = f"…{prompt[-40:]}" if len(prompt) > 40 else prompt
        right += [f'<p class="cand-title" id="{ids}-cand-title">Next token after <code>{E(tail)}</code></p>',
                  f'<p class="note" id="{ids}-cand-note">The model\'s {len(tokens)} likeliest next tokens and '
                  'their probabilities (temperature 1).</p>',
                  _legend(False),
                  _bars([{**t, "chosen": False} for t in tokens], sum(t["prob"] for t in tokens), ids)]
        status = ("ready", "Worked out with the page.")
    else:
        left.append(f'<p class="hint" id="{ids}-prompt-hint">Worked out when this page was built. Generate runs '
                    'the model in your browser; Step adds one token at a time and lets you pick it.</p>')
        left.append('<div class="buttons"><button type="button" class="primary" data-gpt2-run>Generate</button>'
                    '<button type="button" disabled>Stop</button><button type="button" data-gpt2-run>Step</button>'
                    '</div>')
        if a.get("attrs", {}).get("settings") != "none":
            left.append(f'<details class="settings"><summary>Settings: <span class="values">{E(_summary(a))}'
                        '</span></summary></details>')
        if v["view"] == "generate":
            steps = v["steps"]
            left.append(f'<p class="text"><span class="prompt-text">{E(prompt)}</span>'
                        f'<span class="gen-text">{E(v["text"])}</span></p>')
            left.append(f'<ol class="chips" aria-label="generated tokens" data-reason="{E(v["reason"] or "")}">'
                        + "".join(_chip(s) for s in steps) + "</ol>")
            s = steps[-1]
            right += [f'<p class="cand-title" id="{ids}-cand-title">Token {s["index"] + 1}: '
                      f'<code>{_token_text(s["token"])}</code></p>',
                      f'<p class="note" id="{ids}-cand-note">Chosen with {E(percent(s["prob"]))} under the model '
                      f'(rank {s["rank"]}), {E(percent(s["sample_prob"]))} after the settings.</p>',
                      _legend(True), _bars(s["candidates"], s["shown_mass"], ids)]
            if not any(c.get("chosen") for c in s["candidates"]):
                row = _candidate_row({"id": s["id"], "token": s["token"], "prob": s["prob"],
                                      "sample_prob": s["sample_prob"], "chosen": True})
                right.append(f'<ol class="bars outside" aria-label="the chosen token, outside the top candidates">'
                             f'{row}</ol>')
            n = len(steps)
            seed = f", seed {v['seed']}." if a["temperature"] > 0 else "."
            status = ("done", f"Done: {n} token{'' if n == 1 else 's'} ({REASONS.get(v['reason'], v['reason'])})"
                              f"{seed}")
        else:
            right += [f'<p class="cand-title" id="{ids}-cand-title">Candidates</p>',
                      f'<p class="note" id="{ids}-cand-note">Generate or Step to see the candidates for each '
                      'next token.</p>', _legend(True),
                      f'<ol class="bars" aria-labelledby="{ids}-cand-title"></ol><p class="other"></p>']
            status = ("idle", "Press Generate to run the model here.")
    label = a.get("attrs", {}).get("label") or "language model demo"
    about = (f'<p class="about"><strong class="about-name">{E(card["name"])}:</strong> {E(card["description"])}</p>'
             if card["description"] else "")
    return (f'<section class="w" aria-label="{E(label)}">'
            f'<div class="head"><span class="badge">gpt2web</span><span class="model">{E(card["name"])}</span>'
            f'<p class="status" role="status" data-state="{status[0]}">{E(status[1])}</p></div>{about}'
            f'<div class="grid"><div class="left">{"".join(left)}</div>'
            f'<div class="right">{"".join(right)}</div></div></section>')


def render_widget(attrs: dict, *, weights: Path | str | None = None, uid: str | None = None) -> str:
    """The ``<gpt2-widget>`` element with its first view inside, as HTML.

    ``attrs``: the widget's attributes (``model``, ``prompt``, ``mode``, ``max-tokens``,
    ``temperature``, ``top-k``, ``top-p``, ``seed``, ``candidates``, ``settings``, ``loading``,
    ``theme``, ``label``; ``_`` may stand for ``-``). ``weights``: where the models are (default:
    the package's ``weights/``). ``uid``: a prefix for the element ids, unique in the page.
    Raises RenderError (one line) for a bad attribute, prompt or model.
    """
    v = first_view(attrs, weights)
    a = v["attrs"]
    a.setdefault("prompt", v["prompt"])  # always explicit: the children are not the prompt
    if uid is None:
        uid = "gpt2-" + hashlib.sha256(repr(sorted(a.items())).encode()).hexdigest()[:10]
    own = " ".join(f'{k}="{E(val)}"' for k, val in a.items())
    data = f' data-view="{v["view"]}"'
    return (f'<gpt2-widget {own}><div class="gpt2-static"{data}>{_static_view(v, uid)}</div>'
            f'</gpt2-widget>')


# ---------------------------------------------------------------- the static view's stylesheet

# ":not(#…)" matches always and weighs as an id: the static view's rules outrank a theme's
# class-based ones (e.g. Material's "[dir=ltr] .md-typeset ol li").
SCOPE = ":not(#gpt2web-static)"
HOST = f"gpt2-widget > .gpt2-static{SCOPE}"

# Page styles (a documentation theme's) must not reshape the static view: reset what themes
# set on these elements, then the widget's own rules (more specific) apply.
RESET = f"""gpt2-widget {{ display: block; }}
{HOST} :is(section, div, p, ol, ul, li, span, code, label, button, textarea, details, strong, i, meter) {{
  margin: 0; padding: 0; border: 0; background: none; box-shadow: none; list-style: none;
  font: inherit; color: inherit; letter-spacing: normal; text-transform: none; text-indent: 0;
  line-height: inherit; max-width: none; float: none;
}}
gpt2-widget:defined > .gpt2-static{SCOPE} {{ margin: 0; }}  /* the element's own margin, from its shadow root */
"""


def _split_top(s: str, sep: str = ",") -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in s:
        depth += ch in "([" 
        depth -= ch in ")]"
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p.strip() for p in out if p.strip()]


def _scope_selector(sel: str) -> str:
    if sel.startswith(":host"):
        rest = sel[5:]
        cond = ""
        if rest.startswith("("):
            depth = 0
            for i, ch in enumerate(rest):
                depth += ch == "("
                depth -= ch == ")"
                if depth == 0:
                    cond, rest = rest[1:i], rest[i + 1:]
                    break
        return f"gpt2-widget{cond} > .gpt2-static{SCOPE}{rest}"
    return f"{HOST} {sel}"


def scope_css(css: str) -> str:
    """Rewrite shadow-DOM CSS (``:host`` and plain selectors) for the static view in the page."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    out, i = [], 0
    while True:
        j = css.find("{", i)
        if j < 0:
            break
        head = css[i:j].strip()
        depth, k = 1, j + 1
        while depth and k < len(css):
            depth += css[k] == "{"
            depth -= css[k] == "}"
            k += 1
        body = css[j + 1:k - 1]
        if head.startswith(("@media", "@container", "@supports")):
            out.append(f"{head} {{\n{scope_css(body)}}}")
        elif head.startswith("@"):
            out.append(f"{head} {{{body}}}")
        elif head:
            out.append(", ".join(_scope_selector(s) for s in _split_top(head)) + f" {{{body}}}")
        i = k
    return "\n".join(out) + "\n"


def widget_css(widget_js: Path | None = None) -> str:
    """The widget's shadow-DOM stylesheet, read from web/widget.js (its ``CSS`` template)."""
    from .paths import web_dir

    path = widget_js or web_dir() / "widget.js"
    src = path.read_text(encoding="utf-8")
    m = re.search(r"\nconst CSS = `(.*?)`;", src, flags=re.S)
    if not m:
        raise RenderError("web/widget.js has no CSS template")

    def constant(name: re.Match) -> str:  # ${NAME}: a CSS string another module exports
        for js in sorted(path.parent.glob("*.js")):
            found = re.search(rf"\bconst {name.group(1)} = `(.*?)`;", js.read_text(encoding="utf-8"), flags=re.S)
            if found:
                return found.group(1)
        return ""

    return re.sub(r"\$\{\s*(\w+)\s*\}", constant, m.group(1))


# After the widget's rules: what the static markup does differently (no inline styles).
AFTER = f"""{HOST} span.chip {{ display: inline-block; border: 1px solid transparent; }}
{HOST} .share-track meter.share-bar {{ display: block; width: 100%; height: 100%; min-width: 0; background: none;
  border: 0; border-radius: 0; }}
{HOST} .share-track meter.share-bar::-webkit-meter-bar {{ background: none; border: 0; height: 100%; }}
{HOST} .share-track meter.share-bar::-webkit-meter-optimum-value {{ background: var(--share); border-radius: 2px; }}
{HOST} .share-track meter.share-bar::-moz-meter-bar {{ background: var(--share); }}
{HOST} textarea {{ resize: none; }}
"""


def static_css() -> str:
    """The stylesheet of the static first view (published as gpt2web-static.css)."""
    return ("/* gpt2web: the widgets' first view, rendered when the page was built. */\n"
            + RESET + scope_css(widget_css()) + AFTER)


# ---------------------------------------------------------------- command line


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="a widget's first view as HTML, worked out here (for docs builds)")
    p.add_argument("--prompt")
    p.add_argument("--mode", choices=["generate", "next"])
    p.add_argument("--model", help="a model name under --weights (default: demo)")
    p.add_argument("--weights", type=Path, help="folder holding the models (default: the package's weights/)")
    for name in ("max-tokens", "temperature", "top-k", "top-p", "seed", "candidates", "settings", "loading",
                 "theme", "label"):
        p.add_argument(f"--{name}")
    p.add_argument("--stylesheet", action="store_true", help=f"print the static view's CSS ({STYLESHEET})")
    p.set_defaults(func=cmd_render)


def cmd_render(args) -> None:
    if args.stylesheet:
        print(static_css(), end="")
        return
    attrs = {k: getattr(args, k.replace("-", "_")) for k in ATTRIBUTES if k != "model"}
    attrs["model"] = args.model
    print(render_widget({k: v for k, v in attrs.items() if v is not None}, weights=args.weights))
