#!/usr/bin/env python3
"""Train the shipped demo model: a small GPT-2 on the King James Bible (host only).

The corpus comes from Debian's `bible-kjv` package (the KJV text is in the public domain).
The model has GPT-2's architecture and GPT-2's real tokenizer (50,257 tokens), so everything
the page shows about it is exactly what it would show about GPT-2, only smaller.

Deterministic given --seed: fixed data order, fixed initialization, one thread layout.
Writes a Hugging Face checkpoint to --work, then converts it with the same converter users
run on real GPT-2 (`gpt2web convert`), into weights/demo/.

    python3 scripts/train_demo_model.py                # about an hour on 2 cores
    python3 scripts/train_demo_model.py --probe               # tokens/s of a few sizes
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "py"))

CORPUS_CMD = ["bible", "-f", "Gen1:1-Rev22:21"]
VERSE = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")


def build_corpus() -> tuple[list[str], list[str]]:
    """Chapters of the KJV as paragraphs; every 20th chapter is held out for validation."""
    if not shutil.which("bible"):
        sys.exit("the corpus needs Debian's bible-kjv package: apt-get install -y bible-kjv")
    text = subprocess.run(CORPUS_CMD, capture_output=True, text=True, check=True).stdout
    chapters: list[list[str]] = []
    key = None
    for line in text.splitlines():
        m = VERSE.match(line.strip())
        if not m:
            if line.strip() and chapters:  # a verse wrapped onto the next line
                chapters[-1][-1] += " " + line.strip()
            continue
        book, chap, _, verse = m.groups()
        if (book, chap) != key:
            chapters.append([])
            key = (book, chap)
        chapters[-1].append(verse.strip())
    paras = [" ".join(c) for c in chapters]
    train = [p for i, p in enumerate(paras) if i % 20 != 7]
    val = [p for i, p in enumerate(paras) if i % 20 == 7]
    return train, val


def encode_all(paras: list[str]) -> np.ndarray:
    from gpt2web.tokenizer import EOT_ID, default_tokenizer

    tok = default_tokenizer()
    ids: list[int] = []
    for p in paras:
        ids.extend(tok.encode(p, allow_special=False))
        ids.append(EOT_ID)
    return np.array(ids, dtype=np.int64)


def make_model(n_embd: int, n_layer: int, n_head: int, n_ctx: int, seed: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=50257, n_positions=n_ctx, n_embd=n_embd, n_layer=n_layer,
                     n_head=n_head, resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1,
                     activation_function="gelu_new", tie_word_embeddings=True)
    return GPT2LMHeadModel(cfg)


def batches(data: np.ndarray, batch: int, block: int, rng: np.random.Generator):
    import torch

    while True:
        starts = rng.integers(0, len(data) - block - 1, size=batch)
        x = np.stack([data[s:s + block] for s in starts])
        yield torch.from_numpy(x)


@np.errstate(all="ignore")
def evaluate(model, data: np.ndarray, block: int, max_windows: int = 64) -> float:
    import torch

    model.eval()
    losses = []
    n = min(max_windows, (len(data) - 1) // block)
    with torch.no_grad():
        for i in range(0, n, 16):
            x = np.stack([data[j * block:(j + 1) * block] for j in range(i, min(i + 16, n))])
            t = torch.from_numpy(x)
            losses.append(float(model(t, labels=t).loss) * len(x))
    model.train()
    return sum(losses) / n


def probe(args) -> None:
    import torch

    torch.set_num_threads(2)
    for n_embd, n_layer, n_head in [(256, 4, 4), (384, 4, 6), (384, 6, 6), (512, 4, 8)]:
        model = make_model(n_embd, n_layer, n_head, args.ctx, 0)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, 50257, (args.batch, args.ctx))
        for i in range(4):
            if i == 1:
                t0 = time.perf_counter()
            loss = model(x, labels=x).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
        dt = (time.perf_counter() - t0) / 3
        size = 50257 * n_embd + n_layer * 12 * n_embd ** 2
        print(f"n_embd={n_embd} n_layer={n_layer}: {dt * 1000:.0f} ms/step, "
              f"{args.batch * args.ctx / dt:.0f} tokens/s, ~{size / 1e6:.1f} MB int8", flush=True)


def train(args) -> None:
    import torch
    from tqdm import tqdm

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    train_paras, val_paras = build_corpus()
    train_ids, val_ids = encode_all(train_paras), encode_all(val_paras)
    print(f"corpus: {len(train_paras)} train chapters ({len(train_ids):,} tokens), "
          f"{len(val_paras)} validation chapters ({len(val_ids):,} tokens)", flush=True)
    model = make_model(args.n_embd, args.n_layer, args.n_head, args.ctx, args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, args.steps // 30)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))))
    data = batches(train_ids, args.batch, args.ctx, np.random.default_rng(args.seed))
    log = []
    bar = tqdm(range(1, args.steps + 1), mininterval=10, file=sys.stdout)
    for step in bar:
        x = next(data)
        loss = model(x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        if step % args.eval_every == 0 or step == args.steps:
            v = evaluate(model, val_ids, args.ctx)
            log.append({"step": step, "train_loss": round(float(loss), 4), "val_loss": round(v, 4)})
            print(f"\nstep {step}: train loss {float(loss):.3f}, validation loss {v:.3f} "
                  f"(perplexity {math.exp(v):.1f})", flush=True)
        bar.set_postfix(loss=f"{float(loss):.3f}")
    work = Path(args.work)
    model.save_pretrained(work, safe_serialization=True)
    val_loss = evaluate(model, val_ids, args.ctx, max_windows=10_000)
    summary = {"seed": args.seed, "steps": args.steps, "batch": args.batch, "ctx": args.ctx,
               "n_embd": args.n_embd, "n_layer": args.n_layer, "n_head": args.n_head,
               "train_tokens": int(len(train_ids)), "val_tokens": int(len(val_ids)),
               "val_loss": round(val_loss, 4), "val_perplexity": round(math.exp(val_loss), 2),
               "log": log}
    (work / "training.json").write_text(json.dumps(summary, indent=1))
    (work / "validation.txt").write_text("\n".join(val_paras))
    print(f"final validation loss {val_loss:.4f}, perplexity {math.exp(val_loss):.2f}", flush=True)

    from gpt2web.host.convert import convert

    convert(str(work), ROOT / "weights" / "demo", dtype=args.dtype, name="demo")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probe", action="store_true", help="measure the speed of a few sizes and exit")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--steps", type=int, default=1400)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--dtype", default="int8")
    ap.add_argument("--work", default=str(ROOT / "build" / "demo-checkpoint"))
    args = ap.parse_args()
    probe(args) if args.probe else train(args)


if __name__ == "__main__":
    main()
