#!/usr/bin/env python3
"""Start-up timings of the page in headless Chromium (Debian's) against the real server.

  PYTHONPATH=py python3 scripts/measure_startup.py WEIGHTS_DIR [RUNS [MODEL]]

WEIGHTS_DIR is served at /weights/ (it needs gpt2.tiktoken and MODEL/, default "demo").
For each boot path (snapshot; plain = snapshot.json answered 404, as without a snapshot) and
each visit (first = a fresh browser context, empty caches; repeat = a second page in the same
context: HTTP cache and Cache Storage warm), RUNS runs; prints every run, then medians.
Columns, in ms: fcp = first contentful paint (page clock); snapshot_checked ... total = the
worker's boot steps (ready.boot_info.ms, from the worker's start of the boot); bars = page
open -> first candidate bars, clicking Generate as soon as the model list is there.
EXTRA_ARGS (environment) adds Chromium flags. Needs playwright (never `playwright install`).
"""
import json
import os
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = os.environ.get("EXTRA_ARGS", "").split() + ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--no-proxy-server"]
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

def serve(weights):
    env = dict(os.environ, PYTHONPATH=str(REPO / "py"))
    code = "import sys; from gpt2web.host.server import serve; serve(sys.argv[1], port=0, weights_dir=sys.argv[2])"
    proc = subprocess.Popen([sys.executable, "-c", code, str(REPO), str(weights)], stdout=subprocess.PIPE,
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
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    weights, runs = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5
    model = sys.argv[3] if len(sys.argv) > 3 else "demo"
    proc, url = serve(weights)
    rows = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
            for i in range(runs):
                for path in ("snapshot", "plain"):
                    ctx = browser.new_context(service_workers="block")
                    ctx.add_init_script(INIT)
                    if path == "plain":
                        ctx.route("**/runtime/snapshot.json", lambda r: r.fulfill(status=404, body="no"))
                    for v in ("first", "repeat"):
                        page, ready, t = visit(ctx, url, model)
                        assert ready["type"] == "ready", ready
                        assert ready["boot"] == path, ready["boot_info"]
                        ms = ready["boot_info"]["ms"]
                        rec = dict(boot_total=ms["total"], interpreter=ms["interpreter"], fcp=t.get("first-contentful-paint"),
                                   dcl=t["dcl"], bars=t["bars"], **{f"ms_{k}": v for k, v in ms.items()})
                        rows.setdefault((path, v), []).append(rec)
                        print(path, v, json.dumps(rec), flush=True)
                        page.close()
                    ctx.close()
            browser.close()
    finally:
        proc.terminate(); proc.wait()
    print("\nmedians (ms) over", runs, "runs, model", model)
    keys = ["fcp", "ms_snapshot_checked", "ms_snapshot_image", "interpreter", "ms_kernels", "ms_numpy", "ms_engine", "boot_total", "bars"]
    print("path     visit   " + " ".join(f"{k.removeprefix('ms_')[:11]:>11}" for k in keys))
    for (path, v), recs in rows.items():
        med = [statistics.median([r[k] for r in recs if r.get(k) is not None] or [float('nan')]) for k in keys]
        print(f"{path:8} {v:7} " + " ".join(f"{m:11.0f}" for m in med))

if __name__ == "__main__":
    main()
