#!/usr/bin/env python3
"""Start-up timings of the page in headless Chromium (Debian's) against the real server.

  PYTHONPATH=py python3 scripts/measure_startup.py WEIGHTS_DIR [RUNS [MODEL]]
      [--paths snapshot,plain] [--visits first,repeat,third] [--persistent] [--compare OTHER_CHECKOUT]

WEIGHTS_DIR is served at /weights/ (it needs gpt2.tiktoken and MODEL/, default "demo").
For each boot path (snapshot; plain = snapshot.json answered 404, as without a snapshot) and
each visit (first = a fresh browser context, empty caches; repeat = a second page in the same
context: HTTP cache and Cache Storage warm; third = a third page), RUNS runs; prints every
run, then medians.
--persistent: each run in a fresh on-disk profile (launch_persistent_context) instead of an
off-the-record context. Off the record, Chromium keeps no code cache, so every visit compiles
Pyodide's JavaScript and WebAssembly anew and Python runs slower for its first second; a real
reader's repeat visit is the persistent kind (V8 caches code after the first visit for
WebAssembly, after the second for JavaScript).
--service-worker: the page registers its service worker (offline use) and the first visit waits
until the app is kept: later visits are served by it, as a reader's are.
--compare serves another checkout (a folder holding web/, with its runtime and wheels built)
from a second server and measures both in turn within each run ("A" = this checkout, "B" =
the other), so that a before/after comparison sees the same machine load.
Columns, in ms: fcp = first contentful paint (page clock); snapshot_checked ... total = the
worker's boot steps (ready.boot_info.ms, from the worker's start of the boot; snapshot_wanted
= Pyodide asks for the image, wasm_ready = pyodide.asm.wasm compiled, numpy_bundle = the numpy
bundle unpacked in memory, numpy_files = numpy's files in place, numpy = imported); bars =
page open -> first candidate bars, clicking Generate as soon as the model list is there.
EXTRA_ARGS (environment) adds Chromium flags. Needs playwright (never `playwright install`).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "py"))
from gpt2web.host import chromium  # noqa: E402

CHROMIUM_ARGS = os.environ.get("EXTRA_ARGS", "").split() + chromium.CHROMIUM_ARGS
INIT = """
window.__t = {};
new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__t[e.name] = e.startTime; })
  .observe({type: 'paint', buffered: true});
document.addEventListener('DOMContentLoaded', () => {
  window.__t.dcl = performance.now();
  const mo = new MutationObserver(() => {
    if (!window.__t.bars && document.querySelector('#bars li.cand')) window.__t.bars = performance.now();
  });
  mo.observe(document.body, {subtree: true, childList: true});
});
"""
LOAD = """async (model) => {
  const { GPT2Client } = await import('/client.js');
  const client = GPT2Client.shared();
  return new Promise((resolve) => client.send({type: 'load', model}, (m) => {
    if (m.type === 'ready' || m.type === 'error') resolve(m);
  }));
}"""

def serve(weights, root=REPO):
    env = dict(os.environ, PYTHONPATH=str(REPO / "py"))
    code = "import sys; from gpt2web.host.server import serve; serve(sys.argv[1], port=0, weights_dir=sys.argv[2])"
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), str(weights)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    line = proc.stdout.readline().strip()
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, line.rsplit(" ", 1)[1]

def visit(context, url, model):
    page = context.new_page()
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(f"#model option[value='{model}']", state="attached")
    page.select_option("#model", model)
    page.click("#generate")
    page.wait_for_function("() => window.__t.bars", timeout=120_000)
    ready = page.evaluate(LOAD, model)
    t = page.evaluate("() => window.__t")
    page.wait_for_function("() => ['done','error','stopped'].includes(document.querySelector('#status').dataset.state)")
    return page, ready, t

def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("weights", type=Path)
    ap.add_argument("runs", type=int, nargs="?", default=5)
    ap.add_argument("model", nargs="?", default="demo")
    ap.add_argument("--paths", default="snapshot,plain")
    ap.add_argument("--visits", default="first,repeat")
    ap.add_argument("--persistent", action="store_true")
    ap.add_argument("--compare", type=Path, default=None)
    ap.add_argument("--service-worker", action="store_true",
                    help="let the page register its service worker (sw.js): later visits are served by it")
    args = ap.parse_args()
    sw = "allow" if args.service_worker else "block"
    paths, visits = args.paths.split(","), args.visits.split(",")
    all_visits = ["first", "repeat", "third"][:max(["first", "repeat", "third"].index(v) for v in visits) + 1]
    servers = [("A", *serve(args.weights))]
    if args.compare:
        servers.append(("B", *serve(args.weights, args.compare.resolve())))
    rows = {}
    try:
        with sync_playwright() as pw:
            browser = None
            if not args.persistent:
                browser = pw.chromium.launch(executable_path=chromium.CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for i in range(args.runs):
                for label, _, url in servers if i % 2 == 0 else servers[::-1]:
                    for path in paths:
                        profile = None
                        if args.persistent:
                            profile = tempfile.mkdtemp(prefix="gpt2web-profile-")
                            ctx = pw.chromium.launch_persistent_context(
                                profile, executable_path=chromium.CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                                service_workers=sw)
                        else:
                            ctx = browser.new_context(service_workers=sw)
                        ctx.add_init_script(INIT)
                        if path == "plain":
                            ctx.route("**/runtime/snapshot.json", lambda r: r.fulfill(status=404, body="no"))
                        for v in all_visits:
                            page, ready, t = visit(ctx, url, args.model)
                            assert ready["type"] == "ready", ready
                            assert ready["boot"] == path, ready["boot_info"]
                            ms = ready["boot_info"]["ms"]
                            if args.service_worker and v == all_visits[0]:  # until the app is kept
                                page.wait_for_selector("#offline[data-app=kept]", state="attached",
                                                       timeout=180_000)
                            rec = dict(boot_total=ms["total"], interpreter=ms["interpreter"],
                                       fcp=t.get("first-contentful-paint"), dcl=t["dcl"], bars=t["bars"],
                                       **{f"ms_{k}": v for k, v in ms.items()})
                            page.close()
                            if v not in visits:
                                continue
                            rows.setdefault((label, path, v), []).append(rec)
                            print(label, path, v, json.dumps(rec), flush=True)
                        ctx.close()
                        if profile:
                            shutil.rmtree(profile, ignore_errors=True)
            if browser:
                browser.close()
    finally:
        for _, proc, _ in servers:
            proc.terminate()
            proc.wait()
    print("\nmedians (ms) over", args.runs, "runs, model", args.model,
          "(persistent profiles)" if args.persistent else "(off-the-record contexts)")
    keys = ["fcp", "ms_snapshot_checked", "ms_snapshot_wanted", "ms_snapshot_image", "ms_wasm_ready", "ms_numpy_bundle", "interpreter",
            "ms_kernels", "ms_numpy_files", "ms_numpy", "ms_engine", "boot_total", "bars"]
    print("   path     visit   " + " ".join(f"{k.removeprefix('ms_')[:12]:>12}" for k in keys))
    for (label, path, v), recs in sorted(rows.items()):
        med = [statistics.median([r[k] for r in recs if r.get(k) is not None] or [float('nan')]) for k in keys]
        print(f"{label:2} {path:8} {v:7} " + " ".join(f"{m:12.0f}" for m in med))


if __name__ == "__main__":
    main()
