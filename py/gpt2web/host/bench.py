"""`gpt2web bench`: how fast GPT-2 runs in the browser, and in CPython on the same weights.

Browser: the real server (`gpt2web.host.server`, a subprocess on a free port), Debian's
Chromium (headless, through Playwright) and the real worker (`web/worker.js`), driven by
`web/bench.html` / `web/bench.js` through the worker protocol. Every run opens a fresh browser
context (empty Cache Storage, so the shards are really downloaded) and measures, in order:

    boot_ms          worker created -> Python up (the first `stats` answer)
    download_mb      bytes under /weights/ (manifest, vocabulary, shards), in MB (10^6 bytes)
    load_ms          `load` sent -> `ready` (download + shards into the engine)
    (warm-up)        one short generation, not counted
    ttft_ms_16/128   `generate` (max_tokens=1) sent -> its `token` message, 16/128-token prompt
    decode_tok_s     tokens/s from the tokens' arrival times at the page, 16-token prompt,
    decode_ms_p90    128 tokens after the first ones (the first carries the prefill)
    decode_tok_s_ctx512  the same, after a ~480-token prompt (decoding around position 512)
    peak_wasm_mb     Pyodide's WebAssembly memory at the end (it only grows: the peak)

CPython: `Engine.load` (what the CLI uses) on the same folder, and the same generations
(`load_ms`, `ttft_ms_16`, `ttft_ms_128`, `decode_tok_s`, `decode_tok_s_ctx512`, `decode_ms_p90`).
Outside the browser the engine multiplies in float32 NumPy/BLAS (the int8 weights are
dequantized at load).

Generations are greedy (temperature 0), with the page's default 10 candidates per token, on
fixed prompts of an exact token count. Each figure is the median over `--runs` runs (the peak
memory: the largest). `--json` adds `details` (download time, median ms/token, the engine's own
step time, every run's figures) next to the phase keys.

CPython's BLAS uses every core by default; on a shared machine its threads can stall each
other (measured here: 45 tokens/s idle, 4-5 when another process wanted a core).
`--blas-threads N` runs the CPython side in a subprocess with N BLAS threads instead.

The default model is GPT-2 small's shape (124M parameters) with random weights:
`GPT2LMHeadModel(GPT2Config())` with torch seed 0, converted to int8. It is built once into
`build/bench-124m/` (needs PyTorch and transformers) and reused afterwards.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from .chromium import CHROMIUM, CHROMIUM_ARGS

REPO_ROOT = Path(__file__).resolve().parents[3]
WEIGHTS_DIR = REPO_ROOT / "weights"
TOKENIZER_FILE = WEIGHTS_DIR / "gpt2.tiktoken"
DEFAULT_NAME = "bench-124m"
DEFAULT_DIR = REPO_ROOT / "build" / DEFAULT_NAME  # checkpoint/ and weights/<DEFAULT_NAME>/

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # what the worker accepts
MB = 1e6

BROWSER_KEYS = ["boot_ms", "download_mb", "load_ms", "ttft_ms_16", "ttft_ms_128", "decode_tok_s",
                "decode_tok_s_ctx512", "decode_ms_p90", "peak_wasm_mb"]
CPYTHON_KEYS = ["load_ms", "ttft_ms_16", "ttft_ms_128", "decode_tok_s", "decode_tok_s_ctx512", "decode_ms_p90"]

# The targets: (side, key) -> (comparison, value).
TARGETS = {
    ("browser", "download_mb"): ("<=", 135),
    ("browser", "ttft_ms_16"): ("<=", 100),
    ("browser", "ttft_ms_128"): ("<=", 1000),
    ("browser", "decode_tok_s"): (">=", 40),
    ("browser", "decode_tok_s_ctx512"): (">=", 30),
    ("browser", "peak_wasm_mb"): ("<=", 450),
    ("cpython", "decode_tok_s"): (">=", 24),
}

LABELS = {
    "boot_ms": "runtime boot (ms)",
    "download_mb": "download: manifest + vocabulary + shards (MB)",
    "load_ms": "weight load, until ready (ms)",
    "ttft_ms_16": "time to first token, 16-token prompt (ms)",
    "ttft_ms_128": "time to first token, 128-token prompt (ms)",
    "decode_tok_s": "decode, short context (tokens/s)",
    "decode_tok_s_ctx512": "decode, context ~512 (tokens/s)",
    "decode_ms_p90": "decode p90, short context (ms/token)",
    "peak_wasm_mb": "peak WebAssembly memory (MB)",
}

# Fixed prompt material (written for this benchmark), repeated as needed and cut to an exact
# number of tokens. The content does not change the cost of a token; the length does.
PROMPT_TEXT = (
    "The lighthouse keeper climbed the spiral stairs every evening at dusk, counting the steps "
    "as his father had taught him. There were one hundred and twelve of them, worn smooth in the "
    "middle by a century of boots. At the top he trimmed the wick, polished the great lens with a "
    "soft cloth, and wrote the weather in a ledger: wind from the west, a long swell, fog likely "
    "before midnight. Ships he would never meet passed far out on the dark water, and each of them "
    "trusted the light to be there. In winter the storms came in from the open sea and the whole "
    "tower hummed like a plucked string. He did not mind. He made tea on the little iron stove, "
    "read the same three novels in turn, and listened to the radio when the signal allowed. "
    "Sometimes a letter arrived with the supply boat, and he would save it for a calm night. "
)


class BenchError(ValueError):
    """Something the user can fix (a missing package, browser or model); the message says what."""


@dataclass(frozen=True)
class Plan:
    runs: int = 3
    decode_tokens: int = 128  # counted decode steps at short context
    ctx_prompt: int = 480  # prompt length for the ~512-context decode
    ctx_decode_tokens: int = 64  # counted decode steps there (positions ~480..545)
    warmup_steps: int = 2  # decode steps after the first token that are not counted
    candidates: int = 10  # the page's default


FULL = Plan()
QUICK = Plan(runs=1, decode_tokens=16, ctx_decode_tokens=8, warmup_steps=1)


@dataclass
class BenchModel:
    name: str  # the name the worker loads (weights/<name>/)
    model_dir: Path  # the folder Engine.load reads
    weights_dir: Path  # the folder the server serves at /weights/
    label: str  # what to call it in the report


# --------------------------------------------------------------------------- the model


def _model_complete(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        return all((folder / s["file"]).is_file() and (folder / s["file"]).stat().st_size == s["bytes"]
                   for s in manifest["shards"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def build_default_model(base: Path = DEFAULT_DIR, log=print) -> Path:
    """GPT-2 small's shape with random weights (seed 0), int8; built once, then reused."""
    from .convert import convert

    ckpt = base / "checkpoint"
    weights = base / "weights"
    out = weights / DEFAULT_NAME
    weights.mkdir(parents=True, exist_ok=True)
    if not (weights / "gpt2.tiktoken").is_file():
        if not TOKENIZER_FILE.is_file():
            raise BenchError(f"the GPT-2 vocabulary {TOKENIZER_FILE} is missing")
        shutil.copy2(TOKENIZER_FILE, weights / "gpt2.tiktoken")
    if _model_complete(out):
        return out
    if not ((ckpt / "config.json").is_file() and (ckpt / "model.safetensors").is_file()):
        try:
            import torch
            from transformers import GPT2Config, GPT2LMHeadModel
        except ImportError as e:
            raise BenchError(
                f"the default bench model (GPT-2 124M shape, random weights) is built with PyTorch and "
                f"transformers, which are not installed ({e}): pip install torch transformers, "
                f"or pass --model NAME|DIR (a converted model)") from None
        log(f"building the 124M-parameter random GPT-2 checkpoint in {ckpt} (once)")
        tmp = ckpt.with_name(ckpt.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config())
        model.eval()
        model.save_pretrained(tmp, safe_serialization=True)
        del model
        shutil.rmtree(ckpt, ignore_errors=True)
        tmp.rename(ckpt)
    log(f"converting it to int8 shards in {out} (once)")
    tmp = weights / (DEFAULT_NAME + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    convert(str(ckpt), tmp, dtype="int8", group_size=0, name=DEFAULT_NAME, report=False, log=log)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _tokenizer_url_path(model_name: str, manifest: dict) -> str | None:
    """Path below /weights/ the worker fetches the vocabulary from, or None if outside it."""
    url = urljoin(f"http://host/weights/{model_name}/manifest.json", manifest["tokenizer"]["file"])
    path = urlsplit(url).path
    return path[len("/weights/"):] if path.startswith("/weights/") else None


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def resolve_model(spec: str | None, tmp: Path, log=print) -> BenchModel:
    """The model to bench and how to serve it; `tmp` may hold a served copy (hard links)."""
    if spec is None:
        folder = build_default_model(log=log)
        label = "GPT-2 124M shape, random weights (seed 0), int8"
    else:
        folder = Path(spec).expanduser()
        if not (folder / "manifest.json").is_file() and (WEIGHTS_DIR / spec / "manifest.json").is_file():
            folder = WEIGHTS_DIR / spec
        if not (folder / "manifest.json").is_file():
            raise BenchError(f"{spec} is neither a model folder (with manifest.json) nor a model under {WEIGHTS_DIR}")
        label = str(folder)
    folder = folder.resolve()
    manifest = json.loads((folder / "manifest.json").read_text())
    name = folder.name
    tok_rel = _tokenizer_url_path(name, manifest) if MODEL_NAME.match(name) else None
    if tok_rel is not None:
        served = (folder.parent / tok_rel).resolve()
        if served.is_file() and served.is_relative_to(folder.parent):
            return BenchModel(name, folder, folder.parent, label)
    # Serve a copy made of hard links: weights/<name>/ plus the vocabulary where the manifest says.
    name = name if MODEL_NAME.match(name) else "model"
    weights = tmp / "weights"
    for s in [{"file": "manifest.json"}] + manifest["shards"]:
        _link_or_copy(folder / s["file"], weights / name / s["file"])
    tok_rel = _tokenizer_url_path(name, manifest)
    if tok_rel is None:
        raise BenchError(f"{folder}/manifest.json points at a vocabulary outside the weights folder")
    local = (folder / manifest["tokenizer"]["file"]).resolve()
    _link_or_copy(local if local.is_file() else TOKENIZER_FILE, weights / tok_rel)
    return BenchModel(name, folder, weights, label)


# --------------------------------------------------------------------------- prompts


def exact_prompt(tokenizer, n: int, text: str = PROMPT_TEXT) -> str:
    """A prompt that encodes to exactly n tokens."""
    ids = tokenizer.encode(text * (n // 150 + 2))
    for start in range(0, 40):
        prompt = tokenizer.decode(ids[start:start + n])
        if len(tokenizer.encode(prompt)) == n and prompt.strip():
            return prompt
    raise BenchError(f"could not cut the bench text to exactly {n} tokens")


def bench_prompts(model: BenchModel, plan: Plan, n_ctx: int) -> dict[str, str]:
    from ..tokenizer import Tokenizer, default_tokenizer

    manifest = json.loads((model.model_dir / "manifest.json").read_text())
    tok_file = (model.model_dir / manifest["tokenizer"]["file"]).resolve()
    tok = Tokenizer.from_file(tok_file) if tok_file.is_file() else default_tokenizer()
    tail = plan.warmup_steps + 2  # the first token, the uncounted steps, one spare
    lengths = {
        "p16": min(16, n_ctx - tail - plan.decode_tokens),
        "p128": min(128, n_ctx - 2),
        "ctx": min(plan.ctx_prompt, n_ctx - tail - plan.ctx_decode_tokens),
    }
    if min(lengths.values()) < 1:
        raise BenchError(f"the model's context ({n_ctx} tokens) is too short for this benchmark")
    return {k: exact_prompt(tok, n) for k, n in lengths.items()} | {f"{k}_tokens": n for k, n in lengths.items()}


# --------------------------------------------------------------------------- statistics


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def decode_stats(times_ms: list[float], skip: int) -> dict:
    """Per-token figures from token arrival (or completion) times, ms after the request.

    The first token carries the prefill, and `skip` further steps count as warm-up.
    """
    steps = [b - a for a, b in zip(times_ms, times_ms[1:])][skip:]
    if not steps:
        return {"decode_tok_s": None, "decode_ms_median": None, "decode_ms_p90": None, "decode_tokens": 0}
    return {"decode_tok_s": 1000 * len(steps) / sum(steps), "decode_ms_median": statistics.median(steps),
            "decode_ms_p90": _percentile(steps, 90), "decode_tokens": len(steps)}


def _median(runs: list[dict], key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


# --------------------------------------------------------------------------- the browser


class Server:
    """`python -m gpt2web.host.server` on a free port, serving web/ and `weights_dir`."""

    def __init__(self, weights_dir: Path):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in [str(REPO_ROOT / "py"), os.environ.get("PYTHONPATH", "")] if p))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gpt2web.host.server", "--root", str(REPO_ROOT), "--weights", str(weights_dir),
             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("Serving gpt2web at http://"):
            rest = self.proc.stdout.read() if self.proc.poll() is not None else ""
            self.close()
            raise BenchError(f"the server did not start: {(line + ' ' + rest).strip()[-600:]}")
        self.url = line.rsplit(" ", 1)[1]
        # Keep draining its output so a chatty server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def ensure_web_build(log=print) -> None:
    """The Pyodide runtime and a current engine wheel in web/ (what the server hands out)."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        from build_wheel import build_wheel

        if not (REPO_ROOT / "web" / "runtime" / "pyodide.mjs").is_file():
            from setup_runtime import ensure_runtime

            log("setting up the Pyodide runtime in web/runtime/")
            ensure_runtime(REPO_ROOT / "web" / "runtime", quiet=True)
        build_wheel(REPO_ROOT / "web" / "wheels", quiet=True)  # the engine as it is now
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))


def _in_thread(fn, *args):
    """Run fn in a fresh thread: Playwright's sync API refuses a thread with a running asyncio
    loop (pytest-playwright leaves one on the main thread)."""
    box = {}

    def work():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=work, name="gpt2web-bench-browser", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _browser_run(browser, url: str, model: BenchModel, prompts: dict, plan: Plan, log) -> dict:
    context = browser.new_context(service_workers="block")  # fresh: empty Cache Storage
    requests = []
    context.on("requestfinished", lambda r: requests.append(r))
    problems = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
        page.goto(urljoin(url, "bench.html"), wait_until="domcontentloaded")
        page.wait_for_function("() => window.bench !== undefined", timeout=30_000)
        page.evaluate("() => bench.startWorker()")
        boot = page.evaluate("() => bench.boot()")
        load = page.evaluate("m => bench.load(m)", model.name)
        if load["cached"]:
            raise BenchError("the shards came from Cache Storage: the download was not measured")
        downloaded, runtime_bytes = 0, 0
        for r in requests:
            try:
                size = r.sizes()["responseBodySize"]
            except Exception:  # noqa: BLE001 - fall back on the announced length
                size = int((r.response() and r.response().headers.get("content-length")) or 0)
            if "/weights/" in urlsplit(r.url).path:
                downloaded += size
            else:
                runtime_bytes += size

        def generate(prompt: str, max_tokens: int) -> dict:
            return page.evaluate("p => bench.generate(p)", {
                "model": model.name, "prompt": prompt, "max_tokens": max_tokens, "candidates": plan.candidates})

        generate(prompts["p16"], 1 + plan.warmup_steps + 2)  # warm-up: not counted
        ttft16 = generate(prompts["p16"], 1)
        ttft128 = generate(prompts["p128"], 1)
        short = generate(prompts["p16"], 1 + plan.warmup_steps + plan.decode_tokens)
        ctx = generate(prompts["ctx"], 1 + plan.warmup_steps + plan.ctx_decode_tokens)
        end = page.evaluate("() => bench.stats()")
    finally:
        context.close()
    dec = decode_stats(short["times"], plan.warmup_steps)
    dec_ctx = decode_stats(ctx["times"], plan.warmup_steps)
    run = {
        "boot_ms": boot["boot_ms"], "download_mb": downloaded / MB if downloaded else
        (load["shard_bytes"] + load["tokenizer_bytes"]) / MB, "load_ms": load["load_ms"],
        "ttft_ms_16": ttft16["times"][0], "ttft_ms_128": ttft128["times"][0],
        "decode_tok_s": dec["decode_tok_s"], "decode_ms_p90": dec["decode_ms_p90"],
        "decode_tok_s_ctx512": dec_ctx["decode_tok_s"], "peak_wasm_mb": end["wasm_bytes"] / MB,
        # details
        "runtime_ms_in_worker": boot["runtime_ms"], "download_ms": load["download_ms"],
        "runtime_download_mb": runtime_bytes / MB, "wasm_mb_after_boot": boot["wasm_bytes"] / MB,
        "decode_ms_median": dec["decode_ms_median"], "decode_tokens": dec["decode_tokens"],
        "decode_ms_p90_ctx512": dec_ctx["decode_ms_p90"], "decode_tokens_ctx512": dec_ctx["decode_tokens"],
        "engine_step_ms_median": statistics.median(short["step_ms"][1 + plan.warmup_steps:] or [0]),
        "prefill_ms_128_in_engine": ttft128["prefill_ms"], "prefill_ms_ctx_in_engine": ctx["prefill_ms"],
        "stop_reasons": [short["reason"], ctx["reason"]],
        "backend": load["backend"], "boot": load.get("boot"), "n_ctx": load["config"]["n_ctx"],
    }
    if problems:
        log("  browser: " + "; ".join(problems[:5]))
    return run


def _browser_phases(url: str, model: BenchModel, prompts: dict, plan: Plan, log) -> tuple[list[dict], str]:
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BenchError("the browser phases need Playwright (pip install playwright); "
                         "it drives Debian's Chromium, no browser download needed") from None
    if not Path(CHROMIUM).exists():
        raise BenchError(f"{CHROMIUM} is not installed (apt-get install chromium)")
    runs = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                version = browser.version
                for i in range(plan.runs):
                    run = _browser_run(browser, url, model, prompts, plan, log)
                    runs.append(run)
                    log(f"browser run {i + 1}/{plan.runs}: boot {run['boot_ms']:.0f} ms, load {run['load_ms']:.0f} ms, "
                        f"TTFT {run['ttft_ms_16']:.0f}/{run['ttft_ms_128']:.0f} ms, "
                        f"decode {_fmt(run['decode_tok_s'])}/{_fmt(run['decode_tok_s_ctx512'])} tokens/s, "
                        f"wasm {run['peak_wasm_mb']:.0f} MB")
            finally:
                browser.close()
    except PlaywrightError as e:
        raise BenchError(f"the browser failed: {str(e).strip().splitlines()[0]}") from None
    return runs, version


# --------------------------------------------------------------------------- CPython


def _cpython_phases(model: BenchModel, prompts: dict, plan: Plan, log) -> tuple[list[dict], str]:
    import gc

    from ..engine import Engine
    from ..sampling import SamplingParams

    def greedy():
        return SamplingParams(temperature=0, seed=0)

    def timed_steps(engine, prompt: str, max_tokens: int) -> list[float]:
        """Completion time of each token (ms after the request), like arrivals at the page."""
        t0 = time.perf_counter()
        gen = engine.generate(prompt, greedy(), max_tokens=max_tokens, n_candidates=plan.candidates,
                              stop_at_eot=False)
        times = []
        while not gen.done:
            gen.step()
            times.append((time.perf_counter() - t0) * 1000)
        return times

    runs, backend = [], ""
    for i in range(plan.runs):
        gc.collect()
        t0 = time.perf_counter()
        engine = Engine.load(model.model_dir)
        load_ms = (time.perf_counter() - t0) * 1000
        backend = engine.model.backend
        timed_steps(engine, prompts["p16"], 1 + plan.warmup_steps + 2)  # warm-up
        ttft16 = timed_steps(engine, prompts["p16"], 1)[0]
        ttft128 = timed_steps(engine, prompts["p128"], 1)[0]
        dec = decode_stats(timed_steps(engine, prompts["p16"], 1 + plan.warmup_steps + plan.decode_tokens),
                           plan.warmup_steps)
        dec_ctx = decode_stats(timed_steps(engine, prompts["ctx"], 1 + plan.warmup_steps + plan.ctx_decode_tokens),
                               plan.warmup_steps)
        runs.append({"load_ms": load_ms, "ttft_ms_16": ttft16, "ttft_ms_128": ttft128,
                     "decode_tok_s": dec["decode_tok_s"], "decode_tok_s_ctx512": dec_ctx["decode_tok_s"],
                     "decode_ms_p90": dec["decode_ms_p90"], "decode_ms_median": dec["decode_ms_median"],
                     "decode_ms_p90_ctx512": dec_ctx["decode_ms_p90"], "backend": backend})
        del engine
        log(f"cpython run {i + 1}/{plan.runs}: load {load_ms:.0f} ms, TTFT {ttft16:.0f}/{ttft128:.0f} ms, "
            f"decode {_fmt(dec['decode_tok_s'])}/{_fmt(dec_ctx['decode_tok_s'])} tokens/s")
    return runs, backend


def _cpython_in_subprocess(model: BenchModel, prompts: dict, plan: Plan, blas_threads: int, log):
    """The CPython phases in a fresh interpreter whose BLAS uses `blas_threads` threads (the
    thread count is fixed when NumPy loads, and this process has loaded it already)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in [str(REPO_ROOT / "py"), os.environ.get("PYTHONPATH", "")] if p))
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(blas_threads)
    job = json.dumps({"model": [model.name, str(model.model_dir), str(model.weights_dir), model.label],
                      "prompts": prompts, "plan": asdict(plan)})
    proc = subprocess.Popen([sys.executable, "-c", "from gpt2web.host.bench import _cpython_child; _cpython_child()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = proc.communicate(job)
    for line in err.splitlines():
        if line.startswith("cpython run "):
            log(line)
    if proc.returncode:
        raise BenchError(f"the CPython phases failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
    answer = json.loads(out)
    return answer["runs"], answer["backend"]


def _cpython_child() -> None:
    job = json.loads(sys.stdin.read())
    model = BenchModel(job["model"][0], Path(job["model"][1]), Path(job["model"][2]), job["model"][3])
    runs, backend = _cpython_phases(model, job["prompts"], Plan(**job["plan"]),
                                    lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps({"runs": runs, "backend": backend}))


# --------------------------------------------------------------------------- the report


def _fmt(v, key: str = "") -> str:
    if v is None:
        return "-"
    if key.endswith("_mb") or key.endswith("tok_s") or key.endswith("tok_s_ctx512") or abs(v) < 100:
        return f"{v:.1f}"
    return f"{v:.0f}"


def _meets(side: str, key: str, value) -> bool | None:
    target = TARGETS.get((side, key))
    if target is None or value is None:
        return None
    op, limit = target
    return value <= limit if op == "<=" else value >= limit


def _target_text(key: str) -> str:
    parts = []
    for side in ("browser", "cpython"):
        t = TARGETS.get((side, key))
        if t:
            sym = "≤" if t[0] == "<=" else "≥"
            parts.append(f"{sym} {t[1]}" if side == "browser" else f"cpython {sym} {t[1]}")
    return ", ".join(parts)


def format_table(result: dict) -> str:
    rows = []
    for key in BROWSER_KEYS:
        cells = [LABELS[key]]
        for side in ("browser", "cpython"):
            v = result[side].get(key)
            mark = {True: "", False: " ✗", None: ""}[_meets(side, key, v)]
            cells.append(_fmt(v, key) + mark)
        cells.append(_target_text(key))
        rows.append(cells)
    headers = ["phase", "browser", "cpython", "target"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: " | ".join(c.ljust(w) if i in (0, 3) else c.rjust(w)  # noqa: E731
                                    for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    out = [line(headers), "-|-".join("-" * w for w in widths)] + [line(r) for r in rows]
    m = result["machine"]
    boot = result["details"].get("browser_boot")
    out += ["", f"kernel: {result['kernel'] or '-'} (browser), {result['details'].get('cpython_backend') or '-'} (cpython); "
            f"Python boot in the browser: {boot or '?'}; model: {result['model']['label']}",
            f"{result['date']}; {m['cores']} cores ({m['cpu']}); {m.get('chromium') or 'Chromium ?'}; "
            f"Pyodide {m.get('pyodide') or '?'}; Python {m['python']}, {m.get('blas') or 'BLAS ?'} "
            f"(threads: {_threads(m.get('blas_threads'))}); load average (1/5/15 min) "
            f"{_loads(m['load_avg_start'])} at the start, {_loads(m.get('load_avg_end'))} at the end",
            f"median of {result['settings']['runs']} run(s); greedy, {result['settings']['candidates']} candidates per "
            f"token; ✗ = misses the target"]
    return "\n".join(out)


def _threads(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if k != "note") or "default"
    return str(value or "default")


def _loads(values) -> str:
    return " ".join(f"{v:.2f}" for v in values) if values else "?"


def _chromium_version() -> str | None:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def machine_info() -> dict:
    cpu, mem = platform.processor() or platform.machine(), None
    try:
        info = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
        cpu = m.group(1).strip() if m else cpu
        m = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        mem = round(int(m.group(1)) / 1024**2, 1) if m else None
    except OSError:
        pass
    pyodide = None
    try:
        pyodide = json.loads((REPO_ROOT / "web" / "runtime" / "pyodide-lock.json").read_text())["info"]["version"]
    except (OSError, ValueError, KeyError):
        pass
    import numpy

    blas = None
    try:
        dep = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{dep.get('name')} {dep.get('version')}".strip()
    except Exception:  # noqa: BLE001 - older NumPy: not worth failing the bench over
        pass
    threads = {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
               if k in os.environ}
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gb": mem, "os": platform.platform(),
            "python": platform.python_version(), "numpy": numpy.__version__, "blas": blas,
            "blas_threads": threads or "default", "pyodide": pyodide, "chromium": _chromium_version(),
            "load_avg_start": [round(x, 2) for x in os.getloadavg()]}


def run_bench(model: str | None = None, runs: int | None = None, quick: bool = False,
              only: str | None = None, blas_threads: int | None = None, log=print) -> dict:
    """Run the benchmark; return the result dict (see the module docstring for the keys).

    `blas_threads`: run the CPython phases in a subprocess whose BLAS uses that many threads
    (default: this process, BLAS as configured; on a busy machine one thread can be far faster).
    """
    plan = QUICK if quick else FULL
    if blas_threads is not None and blas_threads < 1:
        raise BenchError(f"--blas-threads must be at least 1, got {blas_threads}")
    if runs is not None:
        if runs < 1:
            raise BenchError(f"--runs must be at least 1, got {runs}")
        plan = Plan(**{**asdict(plan), "runs": runs})
    machine = machine_info()
    date = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    with tempfile.TemporaryDirectory(prefix="gpt2web-bench-") as tmp:
        bm = resolve_model(model, Path(tmp), log=log)
        config = json.loads((bm.model_dir / "manifest.json").read_text())["config"]
        prompts = bench_prompts(bm, plan, config["n_ctx"])
        browser_runs, cpython_runs, kernel, cpython_backend, version = [], [], None, None, None
        if only in (None, "browser"):
            ensure_web_build(log)
            server = Server(bm.weights_dir)
            try:
                log(f"browser: {plan.runs} run(s) of model {bm.name} at {server.url}")
                browser_runs, version = _in_thread(_browser_phases, server.url, bm, prompts, plan, log)
            finally:
                server.close()
            kernel = browser_runs[0]["backend"]
        if only in (None, "cpython"):
            log(f"cpython: {plan.runs} run(s) of {bm.model_dir}")
            if blas_threads is None:
                cpython_runs, cpython_backend = _cpython_phases(bm, prompts, plan, log)
            else:
                cpython_runs, cpython_backend = _cpython_in_subprocess(bm, prompts, plan, blas_threads, log)
    machine["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    if blas_threads is not None:
        machine["blas_threads"] = {"OPENBLAS_NUM_THREADS": str(blas_threads), "OMP_NUM_THREADS": str(blas_threads),
                                   "MKL_NUM_THREADS": str(blas_threads), "note": "set by --blas-threads"}
    if version and not machine["chromium"]:
        machine["chromium"] = f"Chromium {version}"
    browser = {k: _median(browser_runs, k) for k in BROWSER_KEYS} if browser_runs else {}
    if browser_runs:
        browser["peak_wasm_mb"] = max(r["peak_wasm_mb"] for r in browser_runs)  # the worst run
    cpython = {k: _median(cpython_runs, k) for k in CPYTHON_KEYS} if cpython_runs else {}
    details = {
        "browser": {k: _median(browser_runs, k) for k in
                    ("download_ms", "runtime_download_mb", "runtime_ms_in_worker", "wasm_mb_after_boot",
                     "decode_ms_median", "decode_ms_p90_ctx512", "engine_step_ms_median",
                     "prefill_ms_128_in_engine", "prefill_ms_ctx_in_engine")} if browser_runs else {},
        "cpython": {k: _median(cpython_runs, k) for k in ("decode_ms_median", "decode_ms_p90_ctx512")}
        if cpython_runs else {},
        "cpython_backend": cpython_backend,
        "browser_boot": browser_runs[0].get("boot") if browser_runs else None,
        "browser_runs": browser_runs,
        "cpython_runs": cpython_runs,
    }
    return {
        "browser": browser, "cpython": cpython, "kernel": kernel, "machine": machine, "date": date,
        "model": {"name": bm.name, "label": bm.label, "dir": str(bm.model_dir), "config": config},
        "settings": {**asdict(plan), "quick": quick,
                     "prompt_tokens": {k: prompts[f"{k}_tokens"] for k in ("p16", "p128", "ctx")}},
        "details": details,
    }
