"""The notebook widget: ``gpt2web.notebook.Widget(prompt=..., mode=...)`` (anywidget).

The front end is the page's own ``<gpt2-widget>`` (web/widget.js with the modules it imports,
loaded in the notebook as they are), given a client that speaks the worker's protocol
(web/protocol.md) over the widget's comm instead of starting a web worker. The engine runs in
the kernel's Python: no Pyodide, no download; the numbers are the CPython engine's, which are
the browser's. Works wherever anywidget does (JupyterLab, Notebook 7, VS Code).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import anywidget
import traitlets

from .. import bridge
from .render import check_attrs, engine_for, model_folder

# Static imports of a module: import ... from "./x.js", import "./x.js", export ... from "./x.js".
IMPORT = re.compile(r"""(\b(?:import|export)\s+(?:[\w*{}\s,$]+?\s+from\s+)?)(["'])(\.{1,2}/[^"']+)\2""")
NOT_IN_NOTEBOOKS = {"offline.js"}  # the standalone app's service worker: not for a notebook


def module_graph(entry: str = "widget.js", web: Path | None = None) -> list[tuple[str, str]]:
    """[(path, source)] of ``entry`` and every module it imports, dependencies first; each
    relative specifier replaced by ``@@gpt2web:<path>@@`` (the browser swaps in a blob URL)."""
    from .paths import web_dir

    web = web or web_dir()
    order: list[tuple[str, str]] = []
    seen: set[str] = set()

    def visit(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        src = "" if Path(path).name in NOT_IN_NOTEBOOKS else (web / path).read_text(encoding="utf-8")

        def spec(m):
            dep = (Path(path).parent / m.group(3)).as_posix()
            dep = str(Path("/" + dep).resolve())[1:] if ".." in dep else dep.removeprefix("./")
            visit(dep)
            return f"{m.group(1)}{m.group(2)}@@gpt2web:{dep}@@{m.group(2)}"

        src = IMPORT.sub(spec, src)
        order.append((path, src))

    visit(entry)
    return order


LOADER = """
// gpt2web in a notebook: the page's own modules, each from a blob URL, and a client that sends
// the worker protocol's messages to the kernel.
const MODULES = @MODULES@;
let loaded = null;
function loadWidget() {
  if (!loaded) {
    const urls = {};
    for (const [path, source] of MODULES) {
      const text = source
        .replace(/@@gpt2web:([^@]+)@@/g, (_, dep) => urls[dep])
        .replaceAll("import.meta.url", JSON.stringify("https://gpt2web.invalid/" + path));
      urls[path] = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
    }
    loaded = import(urls[MODULES[MODULES.length - 1][0]]);
  }
  return loaded;
}

class KernelClient {
  constructor(model) {
    this.model = model;
    this.handlers = new Map();
    this.counter = 0;
    this.onMessage = (msg) => {
      const handler = this.handlers.get(msg.id);
      if (["done", "error", "ready", "next", "stats", "explain", "score", "candidates"].includes(msg.type)) {
        this.handlers.delete(msg.id);
      }
      handler?.(msg);
    };
    model.on("msg:custom", this.onMessage);
  }
  newId(prefix = "r") { this.counter += 1; return `${prefix}${this.counter}`; }
  send(message, onMessage) {
    const id = message.id ?? this.newId();
    if (onMessage) this.handlers.set(id, onMessage);
    this.model.send({ ...message, id });
    return id;
  }
  stop(id) { this.model.send({ type: "stop", id }); }
  close() { this.model.off("msg:custom", this.onMessage); }
}

export default {
  async render({ model, el }) {
    await loadWidget();
    const w = document.createElement("gpt2-widget");
    for (const [k, v] of Object.entries(model.get("attrs"))) w.setAttribute(k, v);
    const client = new KernelClient(model);
    w.client = client;
    el.append(w);
    return () => { client.close(); w.remove(); };
  },
};
"""


def esm() -> str:
    return LOADER.replace("@MODULES@", json.dumps(module_graph()))


def _answer(text: str):
    out = json.loads(text)
    if "error" in out:
        raise _ProtocolError(out["error"])
    return out["ok"]


class _ProtocolError(Exception):
    def __init__(self, error):
        super().__init__(error["message"])
        self.error = error


class Widget(anywidget.AnyWidget):
    """A gpt2web widget in a notebook; arguments are the widget's attributes (``max_tokens``
    for ``max-tokens``, ...), plus ``weights``, the folder holding the models."""

    _esm = traitlets.Unicode().tag(sync=True)
    attrs = traitlets.Dict().tag(sync=True)

    def __init__(self, prompt: str = "In the beginning", mode: str = "generate", *, weights=None, **attrs):
        checked = check_attrs({"prompt": prompt, "mode": mode, **attrs})
        model_folder(checked["model"], weights)  # a missing model is an error now, not in the page
        self.weights = weights
        self._steps: dict[str, dict] = {}  # step sessions: request id -> {"n", "seed", "finished"}
        super().__init__(_esm=esm(), attrs=checked["attrs"])
        self.on_msg(self._on_message)

    # ------------------------------------------------------------ the worker's protocol, in the kernel

    def _engine(self, model: str):
        if model not in bridge._engines:
            bridge._engines[model] = engine_for(model, self.weights)
        return bridge._engines[model]

    def handle(self, msg: dict, send=None) -> list[dict]:
        """The answers to one protocol message (web/protocol.md), as the worker gives them;
        ``send``, when given, gets each at once (a generation's tokens as they come)."""
        kind, rid = msg.get("type"), msg.get("id")
        out: list[dict] = []
        send = send or out.append
        post = lambda t, **f: send({**f, "type": t, "id": rid})  # noqa: E731
        try:
            if kind == "stop":
                if rid in self._steps:
                    self._end(rid, "stopped", post)
                return out
            model = msg["model"]
            eng = self._engine(model)
            if kind == "load":
                card = {k: eng.manifest.get(k) for k in ("description", "examples")
                        if getattr(eng, "manifest", None) and eng.manifest.get(k)}
                post("ready", model=model, config=eng.model.config.to_dict(), backend=eng.model.backend,
                     name=getattr(eng, "name", model), boot="kernel", **card)
            elif kind == "next":
                post("next", model=model, tokens=_answer(bridge.next_tokens(model, msg["prompt"], msg.get("top", 10))))
            elif kind == "score":
                post("score", **_answer(bridge.score(model, msg["text"])))
            elif kind == "explain":
                request = {k: v for k, v in msg.items() if k not in ("type", "id", "model")}
                post("explain", **_answer(bridge.explain(model, json.dumps(request))))
            elif kind in ("generate", "step"):
                self._generate(msg, post)
            else:
                post("error", kind="params", message=f"unknown message type {kind!r}")
        except _ProtocolError as e:
            post("error", **e.error)
        except Exception as e:  # every failure reaches the widget as a readable message
            post("error", kind="runtime", message=f"{type(e).__name__}: {e}")
        return out

    def _start(self, msg):
        return _answer(bridge.generate_start(msg["id"], msg["model"], msg["prompt"], msg["temperature"],
                                             msg["top_k"], msg["top_p"], msg.get("seed"), msg["max_tokens"],
                                             msg.get("candidates", 10)))

    def _end(self, rid, reason, post, n=None, seed=None):
        end = _answer(bridge.generate_end(rid)) or {}
        state = self._steps.pop(rid, {})
        post("done", reason=reason, text=end.get("text", ""), ids=end.get("ids", []),
             seed=seed if seed is not None else state.get("seed"), tokens=n if n is not None else state.get("n", 0),
             tokens_per_s=0, prefill_ms=end.get("prefill_ms"))

    def _generate(self, msg, post):
        rid = msg["id"]
        if msg["type"] == "generate":
            start = self._start(msg)
            n = 0
            while True:
                s = _answer(bridge.generate_step(rid, None))
                n += 1
                token_id = s.pop("id")
                post("token", **s, token_id=token_id, seed=start["seed"], prompt_tokens=start["prompt_tokens"])
                if s["done"]:
                    return self._end(rid, s["reason"], post, n=n, seed=start["seed"])
        state = self._steps.get(rid)
        if state is None:
            start = self._start(msg)
            state = self._steps[rid] = {"n": 0, "seed": start["seed"], "prompt_tokens": start["prompt_tokens"],
                                        "finished": False}
        if msg.get("at") is not None:
            _answer(bridge.generate_truncate(rid, msg["at"]))
            state.update(n=msg["at"], finished=False)
        if state["finished"]:
            return post("error", kind="params", message="this generation is finished: rewrite it from an "
                                                        "earlier token, or start a new one")
        if msg.get("peek"):
            return post("candidates", **_answer(bridge.peek(rid)))
        s = _answer(bridge.generate_step(rid, msg.get("forced_id")))
        state["n"] += 1
        upcoming = None if s["done"] else _answer(bridge.peek(rid))
        token_id = s.pop("id")
        post("token", **s, token_id=token_id, seed=state["seed"], prompt_tokens=state["prompt_tokens"],
             upcoming=upcoming)
        if s["done"]:
            state["finished"] = True
            post("done", reason=s["reason"], text=_answer(bridge.generate_info(rid))["text"],
                 ids=_answer(bridge.generate_info(rid))["ids"], seed=state["seed"], tokens=state["n"],
                 tokens_per_s=0, prefill_ms=None)

    def _on_message(self, widget, content, buffers):
        self.handle(content, send=self.send)
