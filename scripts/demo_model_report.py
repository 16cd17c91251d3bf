#!/usr/bin/env python3
"""Evaluate the shipped demo model through the engine, as the page runs it (host only).

    python3 scripts/demo_model_report.py                      # print the figures
    python3 scripts/demo_model_report.py --compare REV        # and those of weights/demo at git REV
    python3 scripts/demo_model_report.py --compare REV --write

For every source of the corpus (`scripts/demo_corpus.py`) it scores the held-out documents with
`Engine.score_ids` (the sliding window of `gpt2web score`) on the int8 shards, and reports:
perplexity, top-1 and top-5 accuracy, the share of steps where the top candidate has more than
50% and is right ("sure and right"), and the baseline of always guessing the held-out text's own
five most frequent tokens.

`--write` rewrites `weights/demo/README.md` from these figures and the committed training log
(`weights/demo/training.json`), `weights/demo/heldout.json` (the first held-out documents of each
source, which the tests score), and `weights/demo/oracle.json` from PyTorch running the float32
checkpoint that training left in the cache (an independent reference for tests/test_demo_model.py).
Without the checkpoint it keeps the existing oracle and says so. Nothing is written without
`--write`, so the script is safe to run on a clean checkout.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "py"))
sys.path.insert(0, str(ROOT / "scripts"))

from gpt2web.engine import Engine  # noqa: E402
from gpt2web.sampling import SamplingParams  # noqa: E402
from gpt2web.tokenizer import EOT_ID  # noqa: E402

DEMO = ROOT / "weights" / "demo"
ORACLE_PROMPTS = ["In the beginning God created the", "And the LORD spake unto Moses, saying,",
                  "The Python interpreter is", "A friend in need is", "And it came to pass, when",
                  "I wish you a happy New"]


def heldout_streams(max_tokens: int) -> dict[str, list[int]]:
    """Each source's held-out documents as one token stream (<|endoftext|> between documents)."""
    import train_demo_model

    data = train_demo_model.encode_sources()
    return {name: [int(t) for t in d["held"][:max_tokens]] for name, d in data.items()}


def heldout_sample(n_tokens: int = 3000) -> dict:
    """The first held-out documents of each source, at least `n_tokens` tokens of each: the text
    the tests score (committed, so that the tests need no corpus download)."""
    import demo_corpus

    from gpt2web.tokenizer import default_tokenizer

    tok = default_tokenizer()
    out = {}
    for s in demo_corpus.build():
        docs, n = [], 0
        for d in s.split()[1]:
            docs.append(d)
            n += len(tok.encode(d, allow_special=False)) + 1
            if n >= n_tokens:
                break
        out[s.name] = docs
    return {"about": "held-out documents (never trained on) of each source of scripts/demo_corpus.py; "
                     "each is followed by <|endoftext|> when scored", "sources": out}


def evaluate(eng: Engine, ids: list[int]) -> dict:
    res = eng.score_ids(ids[1:], context=ids[0]) if ids[0] == EOT_ID else eng.score_ids(ids)
    toks = res["tokens"]
    n = len(toks)
    logp = sum(math.log(max(t["prob"], 1e-300)) for t in toks)
    scored = [t["id"] for t in toks]
    top5 = [t for t, _ in collections.Counter(scored).most_common(5)]
    return {"tokens": n, "perplexity": math.exp(-logp / n),
            "top1": sum(t["rank"] == 1 for t in toks) / n,
            "top5": sum(t["rank"] <= 5 for t in toks) / n,
            "sure_and_right": sum(t["rank"] == 1 and t["prob"] > 0.5 for t in toks) / n,
            "frequent5": sum(t in top5 for t in scored) / n}


def model_at(rev: str, tmp: Path) -> Path:
    """weights/demo as it was at git revision `rev`, in a temporary folder."""
    out = tmp / "demo"
    out.mkdir()
    files = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:weights/demo"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        data = subprocess.run(["git", "show", f"{rev}:weights/demo/{f}"], cwd=ROOT, capture_output=True,
                              check=True).stdout
        (out / f).write_bytes(data)
    return out


def pytorch_oracle(work: Path, streams: dict[str, list[int]]) -> dict:
    """PyTorch on the float32 checkpoint: next-token tables of fixed prompts, and the held-out
    loss of each source's first window. The tests compare the int8 engine with these."""
    import torch
    from transformers import GPT2LMHeadModel

    from gpt2web.tokenizer import default_tokenizer

    tok = default_tokenizer()
    model = GPT2LMHeadModel.from_pretrained(work).eval()
    n_ctx = model.config.n_positions
    out = {"checkpoint": "float32 PyTorch (transformers GPT2LMHeadModel)", "prompts": [], "windows": []}
    with torch.no_grad():
        for p in ORACLE_PROMPTS:
            ids = tok.encode(p)
            probs = torch.softmax(model(torch.tensor([ids])).logits[0, -1].double(), -1)
            top = torch.topk(probs, 10)
            out["prompts"].append({"prompt": p, "top": [{"id": int(i), "prob": float(v)}
                                                        for v, i in zip(top.values, top.indices)]})
        for name, ids in streams.items():
            window = ids[:n_ctx]
            x = torch.tensor([window])
            logp = torch.log_softmax(model(x).logits[0, :-1].double(), -1)
            nll = -logp[torch.arange(len(window) - 1), x[0, 1:]].mean()
            out["windows"].append({"source": name, "ids": window, "loss": float(nll)})
    return out


def samples(eng: Engine, prompts: list[str] | None = None) -> list[tuple[str, str, str]]:
    res = []
    for prompt in prompts or eng.manifest.get("examples") or ORACLE_PROMPTS[:4]:
        g = eng.generate(prompt, SamplingParams(temperature=0), max_tokens=30)
        list(g)
        s = eng.generate(prompt, SamplingParams(temperature=0.8, top_k=40, seed=1), max_tokens=30)
        list(s)
        res.append((prompt, g.text, s.text))
    return res


MODERN = ("python-docs", "wordnet", "fortunes")  # the held-out modern English


def table(figures: dict[str, dict[str, dict]]) -> list[str]:
    lines = ["| held-out source | model | tokens | perplexity | top-5 | frequent-5 baseline | ratio | top-1 | sure and right |",
             "|---|---|---|---|---|---|---|---|---|"]
    for src in next(iter(figures.values())):
        for m, by_source in figures.items():
            f = by_source[src]
            lines.append(f"| {src} | {m} | {f['tokens']:,} | {f['perplexity']:.1f} | {f['top5'] * 100:.1f}% | "
                         f"{f['frequent5'] * 100:.1f}% | {f['top5'] / f['frequent5']:.2f}x | {f['top1'] * 100:.1f}% | "
                         f"{f['sure_and_right'] * 100:.1f}% |")
    return lines


def targets(f: dict[str, dict], cfg: dict, size: int) -> list[str]:
    """The demo model's targets, each with what was measured and whether it is met."""
    def row(what, want, got, ok):
        return f"| {what} | {want} | {got} | {'met' if ok else '**missed**'} |"

    lines = ["| target | wanted | measured | |", "|---|---|---|---|"]
    for src in MODERN:
        r = f[src]["top5"] / f[src]["frequent5"]
        lines.append(row(f"{src}: top-5 over the frequent-5 baseline", "at least 1.30x", f"{r:.2f}x", r >= 1.3))
    lines.append(row("KJV perplexity", "at most 30", f"{f['kjv']['perplexity']:.1f}", f["kjv"]["perplexity"] <= 30))
    lines.append(row("context", "at least 256 tokens", f"{cfg['n_ctx']}", cfg["n_ctx"] >= 256))
    lines.append(row("int8 shards", "at most 40 MB", f"{size / 1e6:.1f} MB", size <= 40e6))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", metavar="REV", help="also evaluate weights/demo at this git revision")
    ap.add_argument("--max-tokens", type=int, default=20000, help="held-out tokens scored per source")
    ap.add_argument("--write", action="store_true", help="rewrite weights/demo/README.md, heldout.json and oracle.json")
    args = ap.parse_args()

    streams = heldout_streams(args.max_tokens)
    engines = {"this model": Engine.load(DEMO)}
    with tempfile.TemporaryDirectory() as tmp:
        if args.compare:
            engines[f"the one at {args.compare}"] = Engine.load(model_at(args.compare, Path(tmp)))
        figures = {}
        for label, eng in engines.items():
            figures[label] = {}
            for name, ids in streams.items():
                f = evaluate(eng, ids)
                figures[label][name] = f
                print(f"{label:20s} {name:12s} {f['tokens']:6d} tokens: perplexity {f['perplexity']:8.1f}, "
                      f"top-1 {f['top1']:.3f}, top-5 {f['top5']:.3f} (frequent-5 {f['frequent5']:.3f}, "
                      f"{f['top5'] / f['frequent5']:.2f}x), sure and right {f['sure_and_right']:.3f}", flush=True)
        if args.write:  # inside: the compared model's shards are read from the temporary folder
            write(engines, figures, streams)


def write(engines: dict[str, Engine], figures: dict, streams: dict) -> None:
    eng = engines["this model"]
    training_file = DEMO / "training.json"
    if not training_file.is_file():
        sys.exit(f"{training_file} is missing: train first (scripts/train_demo_model.py)")
    training = json.loads(training_file.read_text())
    import train_demo_model

    work = train_demo_model.STATE / f"{training.get('run', 'demo-v2')}-checkpoint"
    if (work / "config.json").is_file():
        (DEMO / "oracle.json").write_text(json.dumps(pytorch_oracle(work, streams), indent=1) + "\n")
        print("wrote", DEMO / "oracle.json", "from PyTorch on", work)
    else:
        print(f"no float32 checkpoint in {work}: oracle.json kept as it is")
    (DEMO / "heldout.json").write_text(json.dumps(heldout_sample(), indent=1, ensure_ascii=False) + "\n")
    print("wrote", DEMO / "heldout.json")
    manifest = eng.manifest
    cfg = manifest["config"]
    size = sum(s["bytes"] for s in manifest["shards"])
    q = manifest.get("quantization_error", {})
    import demo_corpus

    lines = ["# The demo model", "", manifest.get("description", "") + ".", "",
             "Trained by `scripts/train_demo_model.py`; figures below from `scripts/demo_model_report.py`.", "",
             "## Sources and licences", ""]
    for s in demo_corpus.SOURCES:
        lines.append(f"- **{s.name}**: Debian `{s.package}` {s.version} (sha256 `{s.sha256 or demo_corpus.PINS[s.package]}`), "
                     f"{s.licence}. {s.notes}")
    lines += ["- Every 20th document of each source (index 7 mod 20) is held out of training.",
              "- The weights are the project's own, trained from scratch, under the project's licence.", "",
              "## Shape and size", "",
              f"- {cfg['n_layer']} layers, {cfg['n_head']} heads, n_embd {cfg['n_embd']}, context {cfg['n_ctx']} "
              f"tokens, vocabulary {cfg['n_vocab']:,} (tied LM head).",
              f"- Shards: {manifest['dtype']}, {size / 1e6:.1f} MB in {len(manifest['shards'])} files.", ""]
    if q:
        lines.append(f"- int8 vs float32 (converter report): top-1 agreement {q['top1_agreement'] * 100:.1f}%, "
                     f"KL {q['kl_divergence']:.2g} nats/token, max logit difference {q['max_logit_diff']:.3g}.")
    n = next(iter(figures["this model"].values()))["tokens"]
    lines += ["", "## Targets", ""] + targets(figures["this model"], cfg, size) + [
        "", "## Quality (through the engine, int8 shards, sliding window)", "",
        f"The first {n:,} held-out tokens of each source, scored by `Engine.score_ids` (what `gpt2web score` "
        "runs) with its default stride of n_ctx / 2. *Frequent-5 baseline*: always guessing the scored text's "
        "own five most frequent tokens. *Sure and right*: the top candidate has more than 50% and is the "
        "token that follows.", ""] + table(figures)
    plan = training.get("plan") or [[0, training["steps"]]]
    lines += ["", "## Training", "",
              f"{training['steps_done']:,} steps of {training['batch']} x {training['ctx']} tokens "
              f"({training['tokens_seen']:,} tokens seen), {training['wall_hours']:.2f} h of compute on {training['cpu']}, "
              f"torch {training['torch']}, transformers {training['transformers']}. AdamW, learning rate "
              f"{training['lr']:g}: {training.get('warmup', 300)} steps of warm-up, held, then a cosine decay to "
              f"5% over the last fifth of the run. Mixture per batch: "
              + ", ".join(f"{k} {v:.0%}" for k, v in training["mix"].items()) + ". Loss per step: `training.json`."]
    if len(plan) > 1:
        lines += ["", "The run's length was changed while it ran (the schedule's decay moves with it): "
                  + "; ".join(f"from step {a:,} it was to end at step {b:,}" for a, b in plan) + "."]
    evals = [e for e in training["log"] if "val_loss" in e]
    if evals:
        names = list(evals[0]["val_loss"])
        lines += ["", "Held-out loss (nats per token, PyTorch during training, the held-out windows of each source):", "",
                  "| step | tokens seen | train loss | " + " | ".join(names) + " |",
                  "|---|---|---|" + "---|" * len(names)]
        for e in evals:
            lines.append(f"| {e['step']:,} | {e['tokens']:,} | {e['train_loss']:.3f} | "
                         + " | ".join(f"{e['val_loss'][k]:.3f}" for k in names) + " |")
    lines += ["", "## Samples", "", "The model's own example prompts, greedy and sampled (temperature 0.8, "
              "top-k 40, seed 1), 30 tokens:", ""]
    old = {p: g for p, g, _ in samples(engines[k], eng.manifest.get("examples"))} if (
        k := next((m for m in engines if m != "this model"), None)) else {}
    for prompt, g, s in samples(eng):
        lines += [f"- **{prompt}**", f"  - greedy: *{g.strip()}*".replace("\n", " "),
                  f"  - sampled: *{s.strip()}*".replace("\n", " ")]
        if prompt in old:
            lines.append(f"  - greedy, {k}: *{old[prompt].strip()}*".replace("\n", " "))
    (DEMO / "README.md").write_text("\n".join(lines) + "\n")
    print("wrote", DEMO / "README.md")


if __name__ == "__main__":
    main()
