#!/usr/bin/env python3
"""What each view costs in the browser: the worker's time per `explain` / `score` request.

  python3 scripts/profile_views.py [WEIGHTS_DIR] [--model NAME] [--runs N]

WEIGHTS_DIR defaults to the benchmark model's folder that `gpt2web bench` builds
(build/bench-124m/weights: GPT-2 small's shape, random int8 weights). The real server serves
the page; headless Chromium (Debian's, through Playwright) loads the model in the real worker,
then sends the views' requests through the page's own client (web/client.js) and reads the
`ms` each answer carries (time in the worker, Python included). For steps that have read
16 and 128 tokens:

    first view of a step   a forward pass over the step's tokens from scratch (kept for the
                           step's other views), then the view's own work
    same step again        the view's own work only (another layer, head or setting)

Each figure is the median over --runs steps with different tokens. Prints a table (ms).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "py"))
from gpt2web.host.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

ASK = """async (message) => {
  const { GPT2Client } = await import('/client.js');
  const client = GPT2Client.shared(new URL('/worker.js', location.href));
  return new Promise((resolve) => client.send(message, (m) => {
    if (m.type !== 'progress') resolve(m);
  }));
}"""

VIEWS = {
    "sampling": {"view": "sampling", "temperature": 0.8, "top_k": 40, "top_p": 0.95, "seed": 1, "top": 30},
    "attention": {"view": "attention", "layer": None, "head": None},
    "lens": {"view": "lens", "top": 5},
    "embeddings": {"view": "embeddings", "top": 10},
}
AGAIN = {
    "sampling": {"temperature": 1.1},
    "attention": {"layer": 0, "head": 3},
    "lens": {"top": 6},
    "embeddings": {"top": 12},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="?", default=str(REPO / "build" / "bench-124m" / "weights"))
    ap.add_argument("--model", default="bench-124m")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    code = "import sys; from gpt2web.host.server import serve; serve(sys.argv[1], port=0, weights_dir=sys.argv[2])"
    server = subprocess.Popen([sys.executable, "-c", code, str(REPO), args.weights], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env={"PYTHONPATH": str(REPO / "py"), **__import__("os").environ})
    try:
        line = server.stdout.readline().strip()
        if not line.startswith("Serving gpt2web at "):
            sys.exit(f"profile_views: the server did not start: {line}{server.stdout.read()}")
        url = line.rsplit(" ", 1)[1]
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        rng = random.Random(0)
        rows = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page()
            page.set_default_timeout(600_000)
            page.goto(url + "embed.html", wait_until="domcontentloaded")  # any page of the server
            ready = page.evaluate(ASK, {"type": "load", "model": args.model})
            if ready["type"] != "ready":
                sys.exit(f"profile_views: {ready.get('message')}")
            print(f"model {args.model}: {ready['config']}, {ready['backend']}", file=sys.stderr)
            for n in (16, 128):
                for name, fields in VIEWS.items():
                    first, again = [], []
                    for _ in range(args.runs):
                        ids = [rng.randrange(256, 50000) for _ in range(n - 1)]  # a new step each time
                        msg = {"type": "explain", "model": args.model, "prompt": " x", "ids": ids, **fields}
                        a = page.evaluate(ASK, msg)
                        if a["type"] == "error":
                            sys.exit(f"profile_views: {a['message']}")
                        first.append(a["ms"])
                        again.append(page.evaluate(ASK, {**msg, **AGAIN[name]})["ms"])
                    rows.append((name, n, statistics.median(first), statistics.median(again)))
                    if name == "sampling":  # the "sample 100 times" button, on the same step
                        drawn = page.evaluate(ASK, {**msg, "samples": 100})["ms"]
                        rows.append(("sampling: sample 100 times", n, None, drawn))
                times, counts = [], []
                words = "And God said, Let there be light: and there was light. And God saw the light".split()
                for _ in range(args.runs):
                    rng.shuffle(words)
                    text = " ".join((words * 20)[: max(1, int(n * 0.8))])  # about n tokens
                    a = page.evaluate(ASK, {"type": "score", "model": args.model, "text": text})
                    if a["type"] == "error":
                        sys.exit(f"profile_views: {a['message']}")
                    times.append(a["ms"])
                    counts.append(len(a["tokens"]))
                rows.append(("score (surprise)", int(statistics.median(counts)), statistics.median(times), None))
            browser.close()
        print("| view | tokens read | first view of a step (ms) | same step again (ms) |")
        print("|---|---|---|---|")
        for name, n, first, again in rows:
            cell = lambda v: "" if v is None else f"{v:.0f}"  # noqa: E731
            print(f"| {name} | {n} | {cell(first)} | {cell(again)} |")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
