#!/usr/bin/env python3
"""Micro-benchmark of the int8 kernel (`gemm_int8`) in headless Chromium, without Pyodide.

  python3 scripts/bench_kernels.py [BUILD ...] [--reps N] [--T 1,16,128] [--shapes ...]

Each BUILD is a .wasm file or a .c file (a variant of kernels/int8.c, compiled alone to a temp
file with scripts/build_kernels.py's flags and safety checks); NAME=PATH labels it. Default: the
committed web/kernels/int8.wasm. The first build is the baseline the others are compared with.

What it does: Debian's Chromium (/usr/bin/chromium, through Playwright's sync API; never
`playwright install`) opens a blank page that starts a web worker, as the real engine runs in
one. The worker instantiates every build on a `WebAssembly.Memory` of its own (the module
imports env.memory), with the same random int8 weights, scales, biases and activations in each.
The weights fill a 48 MB region and every call reads the next slice of it, so they come from
DRAM as in the real model (which reads each matrix once per forward pass), not from a warm cache.

For every shape (n_in x n_out) and token count T, each build's output is first checked against a
float64 reference in JS on a sample of outputs (|y - y_ref| <= 1e-6 * sum|x * w|, the bound
tests/test_kernels.py holds); then each build is timed for --reps rounds. In each round every
build runs the same number of calls (sized once to take ~--ms milliseconds), in a rotating order,
so that noise from other work on the machine hits all builds alike. Printed: the median GMAC/s
(multiply-adds T * n_in * n_out per call) per build, and each build's median ratio to the
baseline (the median of the per-round ratios). The 768 x 50257 LM head only runs at T = 1.

Options: --layout rows|rows4x16 (default rows4x16, as the shards store the weights),
--group G (scale per group of G inputs; default 0: one per row), --json FILE (all figures),
--js-flags "..." (passed to V8), --quick (3 rounds, ~15 ms each). Run it with `nice` on a shared
machine; the figures are only comparable within one run.

Example, the working tree's kernel against the last commit's:
  git show HEAD:kernels/int8.c > /tmp/int8_head.c
  nice -n 5 python3 scripts/bench_kernels.py head=/tmp/int8_head.c work=kernels/int8.c

From Python: bench(builds, configs, ...) drives Playwright's sync API, so call it from a thread
without a running asyncio loop (e.g. not from inside an async test).
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import build_kernels  # noqa: E402

sys.path.insert(0, str(REPO / "py"))
from gpt2web.host.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
PAGE_URL = "http://kernel-bench.invalid/"  # answered by Playwright, never by the network

# GPT-2 124M: attention in/out projections, MLP up/down, and the LM head (T = 1 only).
SHAPES = [(768, 2304), (768, 768), (768, 3072), (3072, 768), (768, 50257)]
TOKENS = [1, 2, 4, 16, 64, 128]
LM_HEAD = (768, 50257)

WORKER_JS = r"""
"use strict";
const WEIGHT_BYTES = 48 << 20;

function rng(seed) {  // xorshift32, deterministic across builds
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
}

function layoutIndex(layout, n_in, n_out, o, i) {  // byte of weight (o, i), see gemm_int8
  const n4 = n_out & ~3;
  if (layout === 1 && o < n4) return (o >> 2) * 4 * n_in + (i >> 4) * 64 + (o & 3) * 16 + (i & 15);
  return o * n_in + i;
}

function setup(build, maxT, maxIn, maxOut, maxScales) {
  // One region per array, 64-byte aligned, from byte 1024 on (0 stays unused).
  let at = 1024;
  const take = (bytes) => { const p = at; at += (bytes + 63) & ~63; return p; };
  const q = take(WEIGHT_BYTES);
  const x = take(maxT * maxIn * 4), y = take(maxT * maxOut * 4);
  const scale = take(maxScales * 4), bias = take(maxOut * 4);
  const xs = take(maxT * 4);
  const module = new WebAssembly.Module(build.bytes);
  const scratch = 2 * maxT * 2 * ((maxIn + 15) & ~15);  // grown below if the build asks for more
  const xq = take(scratch * 4);
  const memory = new WebAssembly.Memory({ initial: Math.ceil(at / 65536) + 1 });
  const ex = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const need = ex.scratch_bytes(maxT, maxIn);
  if (need > scratch * 4) throw new Error(`${build.name}: scratch_bytes(${maxT}, ${maxIn}) = ${need}`);
  const buf = memory.buffer;
  const r = rng(12345);
  const q8 = new Int8Array(buf, q, WEIGHT_BYTES);
  for (let k = 0; k < WEIGHT_BYTES; k += 4) {
    const v = r();
    q8[k] = v; q8[k + 1] = v >> 8; q8[k + 2] = v >> 16; q8[k + 3] = (v >> 24) | 0;
  }
  for (let k = 0; k < WEIGHT_BYTES; k++) if (q8[k] === -128) q8[k] = -127;  // symmetric int8
  const f = (p, n, lo, hi) => {
    const a = new Float32Array(buf, p, n);
    for (let k = 0; k < n; k++) a[k] = lo + (hi - lo) * (r() / 4294967296);
    return a;
  };
  f(scale, maxScales, 0.001, 0.02);
  f(bias, maxOut, -0.5, 0.5);
  const xa = f(x, maxT * maxIn, -1, 1);
  for (let k = 0; k < xa.length; k += 97) xa[k] *= 40;  // a few large activations, as in GPT-2
  return { name: build.name, ex, memory, p: { q, x, y, scale, bias, xq, xs } };
}

// Calls `calls` products; the weights move through the region so that they are not in cache.
function run(b, cfg, calls, start) {
  const { T, n_in, n_out, group, layout } = cfg;
  const size = n_in * n_out, slices = Math.max(1, Math.floor(WEIGHT_BYTES / size));
  const p = b.p, gemm = b.ex.gemm_int8;
  for (let c = 0; c < calls; c++) {
    const q = p.q + ((start + c) % slices) * size;
    gemm(T, n_in, n_out, p.x, q, p.scale, group, layout, p.bias, p.y, p.xq, p.xs);
  }
}

function check(b, cfg) {  // sampled outputs against a float64 reference
  const { T, n_in, n_out, group, layout } = cfg;
  run(b, cfg, 1, 0);
  const buf = b.memory.buffer;
  const q8 = new Int8Array(buf, b.p.q, n_in * n_out);
  const x = new Float32Array(buf, b.p.x, T * n_in), y = new Float32Array(buf, b.p.y, T * n_out);
  const scale = new Float32Array(buf, b.p.scale, n_out * (group ? n_in / group : 1));
  const bias = new Float32Array(buf, b.p.bias, n_out);
  const outs = new Set([0, 1, 2, 3, 4, 5, n_out - 1, n_out - 2, n_out - 5, (n_out >> 1) | 1]
    .filter((o) => o >= 0 && o < n_out));
  for (let k = 0; k < 24; k++) outs.add((k * 7919) % n_out);
  let worst = 0;
  for (const t of new Set([0, T >> 1, T - 1])) {
    for (const o of outs) {
      let ref = 0, bound = 0;
      for (let i = 0; i < n_in; i++) {
        const s = group ? scale[o * (n_in / group) + Math.floor(i / group)] : scale[o];
        const w = q8[layoutIndex(layout, n_in, n_out, o, i)] * s, v = x[t * n_in + i] * w;
        ref += v; bound += Math.abs(v);
      }
      ref += bias[o]; bound = 1e-6 * (bound + Math.abs(bias[o]));
      worst = Math.max(worst, Math.abs(y[t * n_out + o] - ref) / bound);
      if (!(Math.abs(y[t * n_out + o] - ref) <= bound))
        throw new Error(`${b.name}: T=${T} ${n_in}x${n_out}: y[${t}, ${o}] = ${y[t * n_out + o]}, ` +
                        `reference ${ref} (off by ${(Math.abs(y[t * n_out + o] - ref) / bound).toFixed(2)} x the bound)`);
    }
  }
  return worst;
}

onmessage = (e) => {
  try {
    const { builds, configs, reps, ms, group, layout } = e.data;
    const maxT = Math.max(...configs.map((c) => c.T));
    const maxIn = Math.max(...configs.map((c) => c.n_in));
    const maxOut = Math.max(...configs.map((c) => c.n_out));
    const maxScales = Math.max(...configs.map((c) => c.n_out * (group ? c.n_in / group : 1)));
    const bs = builds.map((b) => setup(b, maxT, maxIn, maxOut, maxScales));
    const results = [];
    for (const c of configs) {
      const cfg = { ...c, group, layout };
      const worst = bs.map((b) => check(b, cfg));
      // Warm up (V8 tiers hot functions up from Liftoff to TurboFan), then size the rounds.
      for (let k = 0; k < 3; k++) for (const b of bs) run(b, cfg, 2, k);
      let calls = 1, t0 = performance.now();
      run(bs[0], cfg, 1, 0);
      let once = performance.now() - t0;
      if (once < ms / 4) {
        t0 = performance.now(); run(bs[0], cfg, 8, 1); once = (performance.now() - t0) / 8;
      }
      calls = Math.max(1, Math.round(ms / Math.max(once, 1e-3)));
      const times = bs.map(() => []);
      let start = 0;
      for (let rep = 0; rep < reps; rep++) {
        for (let j = 0; j < bs.length; j++) {
          const k = (j + rep) % bs.length;  // rotate who goes first
          const t = performance.now();
          run(bs[k], cfg, calls, start);
          times[k].push((performance.now() - t) / calls);
        }
        start += calls;
      }
      results.push({ ...c, calls, worst, ms_per_call: times });
      postMessage({ progress: `${c.n_in}x${c.n_out} T=${c.T}` });
    }
    postMessage({ results });
  } catch (err) {
    postMessage({ error: String(err && err.stack || err) });
  }
};
"""

PAGE_JS = """async (args) => {
  const src = args.worker;
  const worker = new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
  const builds = args.builds.map((b) => {
    const s = atob(b.b64), bytes = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return { name: b.name, bytes };
  });
  return await new Promise((resolve, reject) => {
    worker.onerror = (e) => reject(new Error(e.message));
    worker.onmessage = (e) => {
      if (e.data.progress) console.log("progress: " + e.data.progress);
      else if (e.data.error) reject(new Error(e.data.error));
      else resolve(e.data.results);
    };
    worker.postMessage({ builds, configs: args.configs, reps: args.reps, ms: args.ms,
                         group: args.group, layout: args.layout });
  });
}"""


def compile_variant(source: Path, out_path: Path) -> bytes:
    """A kernel source alone, with the flags of scripts/build_kernels.py, checked as it checks
    the real build (no data segments, no C stack)."""
    source = source.resolve()
    cmd = [build_kernels.CLANG, *build_kernels.FLAGS, "-o", str(out_path.resolve()), source.name]
    proc = subprocess.run(cmd, cwd=source.parent, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    wasm = out_path.read_bytes()
    check(wasm, out_path)
    return wasm


def check(wasm: bytes, path: Path) -> None:
    found = tuple(name for name, _ in build_kernels._exports(dict(build_kernels.sections(wasm)).get(7, b"\0")))
    if not {"gemm_int8", "scratch_bytes"} <= set(found):
        raise SystemExit(f"{path}: exports {found}, needs gemm_int8 and scratch_bytes")
    build_kernels.check_module(wasm, path, found)


def load_builds(specs: list[str], tmp: Path) -> list[tuple[str, bytes]]:
    builds = []
    for k, spec in enumerate(specs):
        name, _, path = spec.rpartition("=")
        path = Path(path)
        name = name or path.stem
        if path.suffix == ".c":
            wasm = compile_variant(path, tmp / f"build{k}.wasm")
        else:
            wasm = path.read_bytes()
            check(wasm, path)
        builds.append((name, wasm))
    names = [n for n, _ in builds]
    if len(set(names)) != len(names):
        raise SystemExit(f"two builds have the same name {names}: label them NAME=PATH")
    return builds


def bench(builds: list[tuple[str, bytes]], configs: list[dict], reps: int, ms: float, group: int,
          layout: int, js_flags: str = "", log=print) -> list[dict]:
    from playwright.sync_api import sync_playwright

    args = list(CHROMIUM_ARGS) + ([f"--js-flags={js_flags}"] if js_flags else [])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(0)
            page.on("console", lambda m: log(f"  {m.text[len('progress: '):]}")
                    if m.text.startswith("progress: ") else None)
            page.route(PAGE_URL, lambda route: route.fulfill(
                status=200, content_type="text/html", body="<!doctype html><title>kernel bench</title>"))
            page.goto(PAGE_URL)
            return page.evaluate(PAGE_JS, {
                "worker": WORKER_JS, "configs": configs, "reps": reps, "ms": ms, "group": group,
                "layout": layout,
                "builds": [{"name": n, "b64": base64.b64encode(w).decode()} for n, w in builds]})
        finally:
            browser.close()


def summarize(names: list[str], results: list[dict]) -> str:
    head = ["n_in x n_out", "T"] + [f"{n} GMAC/s" for n in names] + [f"{n} / {names[0]}" for n in names[1:]]
    rows = [head]
    for r in results:
        macs = r["T"] * r["n_in"] * r["n_out"]
        med = [macs / statistics.median(t) / 1e6 for t in r["ms_per_call"]]
        base = r["ms_per_call"][0]
        ratios = [statistics.median(b / t for b, t in zip(base, times)) for times in r["ms_per_call"][1:]]
        rows.append([f"{r['n_in']}x{r['n_out']}", str(r["T"])] + [f"{g:.2f}" for g in med] +
                    [f"{x:.3f}" for x in ratios])
    widths = [max(len(row[c]) for row in rows) for c in range(len(head))]
    lines = ["| " + " | ".join(cell.rjust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs="*", help="[NAME=]PATH of a .wasm or .c (default: the committed binary)")
    ap.add_argument("--T", default=",".join(map(str, TOKENS)), help="token counts (default %(default)s)")
    ap.add_argument("--shapes", default=",".join(f"{a}x{b}" for a, b in SHAPES),
                    help="n_in x n_out list (default %(default)s)")
    ap.add_argument("--reps", type=int, default=9, help="timed rounds per shape (default %(default)s)")
    ap.add_argument("--ms", type=float, default=40, help="milliseconds per build and round (default %(default)s)")
    ap.add_argument("--group", type=int, default=0)
    ap.add_argument("--layout", choices=("rows", "rows4x16"), default="rows4x16")
    ap.add_argument("--js-flags", default="")
    ap.add_argument("--quick", action="store_true", help="3 rounds of ~15 ms")
    ap.add_argument("--json", help="write every timing to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.ms = 3, 15
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    tokens = [int(t) for t in args.T.split(",")]
    configs = [{"n_in": i, "n_out": o, "T": t} for i, o in shapes for t in tokens
               if (i, o) != LM_HEAD or t == 1]
    if args.group and any(i % args.group for i, _ in shapes):
        raise SystemExit(f"--group {args.group} must divide every n_in")
    with tempfile.TemporaryDirectory() as tmp:
        builds = load_builds(args.builds or [str(build_kernels.OUT_DIR / build_kernels.WASM_NAME)], Path(tmp))
    names = [n for n, _ in builds]
    print(f"builds: {', '.join(f'{n} ({len(w)} bytes)' for n, w in builds)}; {args.reps} rounds of "
          f"~{args.ms:g} ms; layout {args.layout}, group {args.group}", flush=True)
    results = bench(builds, configs, args.reps, args.ms, args.group, 1 if args.layout == "rows4x16" else 0,
                    args.js_flags, log=lambda m: print(m, flush=True))
    worst = [max(r["worst"][k] for r in results) for k in range(len(names))]
    print("\nall sampled outputs within the bound (1e-6 * sum|x * w|); worst error: " +
          ", ".join(f"{n} {w:.3f}" for n, w in zip(names, worst)) + " x the bound\n")
    print(summarize(names, results))
    if args.json:
        Path(args.json).write_text(json.dumps({"builds": names, "args": vars(args), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
