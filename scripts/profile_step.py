#!/usr/bin/env python3
"""Where the time of a forward pass goes in the browser: per part, in headless Chromium.

  python3 scripts/profile_step.py [MODEL_DIR] [--runs N]

MODEL_DIR defaults to the benchmark model `gpt2web bench` builds (build/bench-124m/weights/
bench-124m: GPT-2 small's shape, random int8 weights). A page on the real server (Debian's
Chromium through Playwright; never `playwright install`) starts Pyodide with the kernels
(web/kernels/kernels.js), installs the engine wheel, copies the model into its file system and
loads it with `Engine.load`, the code path the worker uses. Then it times, on fixed token ids:

    prefill 16 / 128   one forward pass over a 16- / 128-token prompt (time to first token)
    decode @16 / @512  one new token after 16 / ~512 cached positions (median of the steps)
    engine step        Generation.step at short context: forward + sampling + candidates view

and splits each forward pass into its kernel calls (wrapped with timers on the engine's
`fast.Runner`): the int8 products of the blocks, the LM head, attention, layer norm, GELU, and
the rest (embedding, residual adds, Python between calls). Each figure is the median over
--runs passes; the timers add ~1 us per call. Prints a table (ms).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "py"))
from gpt2web.host.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
DEFAULT_MODEL = REPO / "build" / "bench-124m" / "weights" / "bench-124m"

BOOT = """async (files) => {
  const { loadPyodide } = await import("/runtime/pyodide.mjs");
  const pyodide = await loadPyodide({ indexURL: location.origin + "/runtime/" });
  await pyodide.loadPackage("numpy", { messageCallback: () => {} });
  const { installKernels } = await import("/kernels/kernels.js");
  await installKernels(pyodide, "/kernels/int8.wasm");
  const index = await (await fetch("/wheels/index.json")).json();
  pyodide.unpackArchive(await (await fetch("/wheels/" + index.wheel)).arrayBuffer(), "wheel");
  for (const f of files) {
    const bytes = new Uint8Array(await (await fetch("/weights/" + f)).arrayBuffer());
    const path = "/w/" + f;
    pyodide.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
    pyodide.FS.writeFile(path, bytes);
  }
  self.pyodide = pyodide;
  return true;
}"""

PROFILE = r'''
import json, statistics, time
import numpy as np
from gpt2web.engine import Engine
from gpt2web.sampling import SamplingParams

engine = Engine.load("MODEL")
model = engine.model
runner = model._runner
if runner is None:
    model.forward([0], model.new_cache())
    runner = model._runner
assert runner, "the kernels' fast path is not in use"
n_vocab = model.config.n_vocab
acc = {}

def timed(fn, name, pick=None):
    def call(*args):
        t0 = time.perf_counter()
        r = fn(*args)
        key = pick(args) if pick else name
        acc[key] = acc.get(key, 0.0) + time.perf_counter() - t0
        return r
    return call

runner.gemm = timed(runner.gemm, None, lambda a: "LM head" if a[2] == n_vocab else "int8 products")
runner.attend = timed(runner.attend, "attention")
runner.ln = timed(runner.ln, "layer norm")
runner.gelu = timed(runner.gelu, "GELU")

ids = ((np.arange(600) * 7919) % 50000).tolist()
PARTS = ["int8 products", "LM head", "attention", "layer norm", "GELU"]

def one(run):
    acc.clear()
    t0 = time.perf_counter()
    run()
    total = time.perf_counter() - t0
    row = {k: acc.get(k, 0.0) * 1000 for k in PARTS}
    row["rest"] = total * 1000 - sum(row.values())
    row["total"] = total * 1000
    return row

def prefill(n):
    return lambda: model.forward(ids[:n], model.new_cache())

def decode_at(n):
    cache = model.new_cache()
    model.forward(ids[:n], cache)
    state = {"i": n}
    def step():
        model.forward([ids[state["i"]]], cache)
        state["i"] += 1
    return step

runs = RUNS
rows = {}
for label, make in (("prefill 16", lambda: prefill(16)), ("prefill 128", lambda: prefill(128)),
                    ("decode @16", lambda: decode_at(16)), ("decode @512", lambda: decode_at(512))):
    fn = make()
    one(fn)  # warm-up
    got = [one(fn) for _ in range(runs)]
    rows[label] = {k: statistics.median(r[k] for r in got) for k in got[0]}

gen = engine.generate("The quick brown fox jumps over the lazy dog.", SamplingParams(temperature=1.0, top_k=40, seed=1),
                      max_tokens=3 + runs * 2)
gen.step()
steps = []
for _ in range(runs * 2):
    t0 = time.perf_counter()
    gen.step()
    steps.append((time.perf_counter() - t0) * 1000)
result = json.dumps({"rows": rows, "engine_step_ms": statistics.median(steps), "backend": model.backend})
'''


def serve(model_dir: Path):
    import uvicorn
    from gpt2web.host.server import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(REPO, weights_dir=model_dir), host="127.0.0.1", port=0,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args(argv)
    if not (args.model / "manifest.json").is_file():
        sys.exit(f"{args.model} has no manifest.json (run `gpt2web bench` once to build the default model)")
    sys.path.insert(0, str(REPO / "scripts"))
    from build_wheel import build_wheel
    from playwright.sync_api import sync_playwright

    build_wheel(quiet=True)
    manifest = json.loads((args.model / "manifest.json").read_text())
    files = ["manifest.json"] + [s["file"] for s in manifest["shards"]]
    tok = manifest["tokenizer"]["file"]
    server, url = serve(args.model.parent)
    files = [f"{args.model.name}/{f}" for f in files]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(600_000)
        page.route(f"{url}/__profile__.html", lambda r: r.fulfill(status=200, content_type="text/html",
                                                                  body="<!doctype html><title>profile</title>"))
        page.goto(f"{url}/__profile__.html")
        page.evaluate(BOOT, files)
        # the vocabulary, where the manifest says (a path relative to the model folder)
        page.evaluate("""async ([src, dst]) => {
            const b = new Uint8Array(await (await fetch(src)).arrayBuffer());
            pyodide.FS.writeFile(dst, b);
        }""", [f"/weights/{args.model.name}/{tok}", str(Path("/w", args.model.name, tok).resolve())])
        out = json.loads(page.evaluate("""async (code) => {
            const ns = pyodide.globals.get("dict")();
            await pyodide.runPythonAsync(code, { globals: ns });
            return ns.get("result");
        }""", PROFILE.replace("RUNS", str(args.runs)).replace("MODEL", f"/w/{args.model.name}")))
        browser.close()
    server.should_exit = True
    cols = ["int8 products", "LM head", "attention", "layer norm", "GELU", "rest", "total"]
    print(f"backend {out['backend']}, median of {args.runs} passes, ms")
    print(f"{'':14}" + "".join(f"{c:>15}" for c in cols))
    for label, row in out["rows"].items():
        print(f"{label:14}" + "".join(f"{row[c]:15.2f}" for c in cols))
    print(f"engine step at short context (forward + sampling + candidates): {out['engine_step_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
