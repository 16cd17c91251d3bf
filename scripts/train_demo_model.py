#!/usr/bin/env python3
"""Train the shipped demo model: a small GPT-2 on the King James Bible and modern English (host only).

The corpus (`scripts/demo_corpus.py`): the KJV, the Python documentation's prose, WordNet's
glosses with their example sentences and the fortune-mod quotations, all pinned Debian packages
whose text may be redistributed; every 20th document of each source is held out.

The model has GPT-2's architecture and GPT-2's real tokenizer (50,257 tokens), so everything the
page shows about it is what it would show about GPT-2, only smaller.

Where the time goes: at this width the tied 50,257-row output layer is most of a training step.
Tokens that occur fewer than --min-count times in the training text need no row of their own
while training: they share one row, `other`, whose logit counts once per token it stands for
(log n_other is added), so the loss is exactly the full 50,257-way softmax of a model whose rows
for those tokens are all equal.
At the end the compact rows are expanded back to the full vocabulary, which gives the same
probabilities; the converter then writes int8 shards, as it does for real GPT-2.

Training resumes from its last checkpoint, kept outside git (~/.cache/gpt2web/demo-training/),
so it can run in the background over several sessions. Deterministic given --seed.

    python3 scripts/train_demo_model.py                # train (or resume), then convert
    python3 scripts/train_demo_model.py --steps N      # a longer or shorter run (moves the decay)
    python3 scripts/train_demo_model.py --probe        # tokens/s of a few sizes
    python3 scripts/train_demo_model.py --finish       # convert the last checkpoint now
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "py"))
sys.path.insert(0, str(ROOT / "scripts"))

import demo_corpus  # noqa: E402

STATE = demo_corpus.CACHE.parent / "demo-training"
DEMO = ROOT / "weights" / "demo"
# Share of each training batch drawn from each source (the KJV is the model's home ground).
MIX = {"kjv": 0.4, "python-docs": 0.2, "wordnet": 0.2, "fortunes": 0.2}

DESCRIPTION = ("A small model with GPT-2's architecture and GPT-2's own tokenizer, trained by gpt2web "
               "on the King James Bible and some modern English (Python's documentation, WordNet, "
               "fortune quotes); it is not GPT-2")
# The first is the page's default prompt: one where the model is fairly sure of the next token.
EXAMPLES = ["And it came to pass, when", "A friend in need is", "The Python interpreter is",
            "In the beginning God created the"]


def encode_sources() -> dict:
    """Token ids of every source's training and held-out documents, cached by text hash."""
    from gpt2web.tokenizer import EOT_ID, default_tokenizer

    sources = demo_corpus.build()
    tok = default_tokenizer()
    out = {}
    for s in sources:
        cache = STATE / f"ids-{s.name}-{s.text_sha256[:16]}.npz"
        if cache.is_file():
            z = np.load(cache)
            out[s.name] = {"train": z["train"], "held": z["held"], "source": s}
            continue
        parts = {}
        for split, docs in zip(("train", "held"), s.split()):
            ids: list[int] = []
            for d in docs:
                ids.extend(tok.encode(d, allow_special=False))
                ids.append(EOT_ID)
            parts[split] = np.array(ids, dtype=np.int32)
        STATE.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **parts)
        out[s.name] = {**parts, "source": s}
    return out


def compact_vocab(data: dict, min_count: int) -> np.ndarray:
    """The token ids that occur at least `min_count` times in the training text (sorted), plus
    <|endoftext|>. The rarer ones share the `other` row with the unseen ones."""
    from gpt2web.tokenizer import EOT_ID

    counts = np.bincount(np.concatenate([d["train"] for d in data.values()]), minlength=50257)
    counts[EOT_ID] = max(counts[EOT_ID], min_count)
    return np.flatnonzero(counts >= min_count).astype(np.int64)


def make_model(n_vocab: int, args):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(args.seed)
    cfg = GPT2Config(vocab_size=n_vocab, n_positions=args.ctx, n_embd=args.n_embd, n_layer=args.n_layer,
                     n_head=args.n_head, resid_pdrop=args.dropout, embd_pdrop=args.dropout,
                     attn_pdrop=args.dropout, activation_function="gelu_new", tie_word_embeddings=True)
    return GPT2LMHeadModel(cfg)


def loss_fn(model, x, other_bias):
    """Mean next-token loss of the compact model; the last row stands for every unseen token."""
    import torch

    h = model.transformer(x).last_hidden_state
    logits = model.lm_head(h[:, :-1])
    logits[..., -1] += other_bias
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                             x[:, 1:].reshape(-1))


class Batches:
    """Random windows of `ctx` tokens, sources mixed by MIX; its state is two integers."""

    def __init__(self, data: dict, remap: np.ndarray, batch: int, ctx: int, seed: int):
        self.streams = {k: remap[v["train"]] for k, v in data.items()}
        self.names = sorted(self.streams)
        self.p = np.array([MIX[n] for n in self.names])
        self.p /= self.p.sum()
        self.batch, self.ctx, self.seed, self.n = batch, ctx, seed, 0

    def next(self):
        import torch

        rng = np.random.default_rng([self.seed, self.n])
        self.n += 1
        rows = []
        for src in rng.choice(len(self.names), size=self.batch, p=self.p):
            s = self.streams[self.names[src]]
            start = rng.integers(0, len(s) - self.ctx)
            rows.append(s[start:start + self.ctx])
        return torch.from_numpy(np.stack(rows).astype(np.int64))


def evaluate(model, data: dict, remap, ctx: int, other_bias: float, max_windows: int = 24) -> dict:
    import torch

    model.eval()
    res = {}
    with torch.no_grad():
        for name, d in data.items():
            s = remap[d["held"]]
            n = min(max_windows, len(s) // ctx)
            x = torch.from_numpy(np.stack([s[i * ctx:(i + 1) * ctx] for i in range(n)]).astype(np.int64))
            res[name] = round(float(sum(loss_fn(model, x[i:i + 8], other_bias) * len(x[i:i + 8])
                                         for i in range(0, n, 8)) / n), 4)
    model.train()
    return res


def decay_start(args) -> int:
    """The step where the learning rate starts to decay: the last fifth of the run."""
    return int(args.steps * 0.8)


def schedule(step: int, args) -> float:
    """Warm up, hold, then decay over the last fifth (so a long run's checkpoints stay usable)."""
    warm, decay_from = args.warmup, decay_start(args)
    if step < warm:
        return (step + 1) / warm
    if step < decay_from:
        return 1.0
    t = min(1.0, (step - decay_from) / max(1, args.steps - decay_from))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))


def probe(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    # The full output layer, the compact one (the training corpus's tokens), and almost none
    # (what the transformer body alone costs), at the shipped shape; then a wider model.
    for n_embd, n_layer, n_head, n_vocab in [(256, 6, 4, 50257), (256, 6, 4, 25412), (256, 6, 4, 1024),
                                              (384, 6, 6, 50257), (384, 6, 6, 25412)]:
        args.n_embd, args.n_layer, args.n_head = n_embd, n_layer, n_head
        model = make_model(n_vocab, args)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, n_vocab - 1, (args.batch, args.ctx))
        times = {"forward+backward": 0.0, "optimizer": 0.0}
        for i in range(4):
            t0 = time.perf_counter()
            loss = loss_fn(model, x, 3.0)
            loss.backward()
            t1 = time.perf_counter()
            opt.step()
            opt.zero_grad()
            t2 = time.perf_counter()
            if i:
                times["forward+backward"] += (t1 - t0) / 3
                times["optimizer"] += (t2 - t1) / 3
        dt = sum(times.values())
        size = 50257 * n_embd + n_layer * 12 * n_embd ** 2
        print(f"n_embd={n_embd} n_layer={n_layer} vocab rows={n_vocab}: {dt * 1000:.0f} ms/step "
              f"(optimizer {times['optimizer'] * 1000:.0f}), {args.batch * args.ctx / dt:.0f} tokens/s, "
              f"~{size / 1e6:.1f} MB int8", flush=True)


def save_state(path: Path, model, opt, batches, step, log, wall, vocab, plan):
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "batch_n": batches.n,
                "step": step, "log": log, "wall": wall, "vocab": vocab, "plan": plan}, tmp)
    os.replace(tmp, path)


def train(args) -> None:
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    data = encode_sources()
    vocab = compact_vocab(data, args.min_count)
    remap = np.full(50257, len(vocab), dtype=np.int64)  # unseen tokens -> the shared row
    remap[vocab] = np.arange(len(vocab))
    n_other = 50257 - len(vocab)
    other_bias = math.log(n_other)
    for name, d in data.items():
        print(f"{name}: {len(d['train']):,} training tokens, {len(d['held']):,} held out", flush=True)
    print(f"compact vocabulary: {len(vocab):,} seen tokens + 1 row for the {n_other:,} unseen", flush=True)

    model = make_model(len(vocab) + 1, args)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    batches = Batches(data, remap, args.batch, args.ctx, args.seed)
    STATE.mkdir(parents=True, exist_ok=True)
    ckpt = STATE / f"{args.run}.pt"
    step, log, wall, plan = 0, [], 0.0, []
    if ckpt.is_file():
        st = torch.load(ckpt, weights_only=False)
        if not np.array_equal(st["vocab"], vocab):
            sys.exit(f"{ckpt} was trained on another corpus; use another --run name")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        batches.n, step, log, wall = st["batch_n"], st["step"], st["log"], st["wall"]
        plan = st.get("plan", [[0, 12000]])  # checkpoints from before plans were kept ran to 12000
        print(f"resumed {ckpt} at step {step} ({wall / 3600:.2f} h so far)", flush=True)
    if not plan or plan[-1][1] != args.steps:
        # A changed --steps changes the schedule from here on; the log's lr column shows it.
        plan.append([step, args.steps])
        if len(plan) > 1:
            print(f"schedule now ends at step {args.steps} (was {plan[-2][1]})", flush=True)
    meta = {"seed": args.seed, "steps": args.steps, "warmup": args.warmup, "plan": plan, "batch": args.batch, "ctx": args.ctx,
            "n_embd": args.n_embd, "n_layer": args.n_layer, "n_head": args.n_head, "lr": args.lr, "min_count": args.min_count,
            "dropout": args.dropout, "mix": MIX, "compact_vocab": int(len(vocab)),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "threads": args.threads, "cpu": cpu_name()}
    deadline = time.time() + args.hours * 3600 if args.hours else None
    t_last, tokens_per_step = time.perf_counter(), args.batch * (args.ctx - 1)
    while step < args.steps and not args.finish:
        for g in opt.param_groups:
            g["lr"] = args.lr * schedule(step, args)
        t0 = time.perf_counter()
        loss = loss_fn(model, batches.next(), other_bias)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        wall += time.perf_counter() - t0
        if step % args.log_every == 0:
            entry = {"step": step, "tokens": step * tokens_per_step, "train_loss": round(loss.item(), 4),
                     "lr": round(opt.param_groups[0]["lr"], 6), "wall_s": round(wall, 1)}
            if step % args.eval_every == 0 or step == args.steps:
                entry["val_loss"] = evaluate(model, data, remap, args.ctx, other_bias)
            log.append(entry)
            rate = args.log_every * tokens_per_step / (time.perf_counter() - t_last)
            t_last = time.perf_counter()
            print(json.dumps(entry), f"{rate:.0f} tok/s", flush=True)
        if step % args.save_every == 0:
            save_state(ckpt, model, opt, batches, step, log, wall, vocab, plan)
            if step <= decay_start(args) < step + args.save_every:
                # The last save before the decay: a longer run can go on from here (copy it to
                # {run}.pt and pass a larger --steps) instead of from a decayed model.
                shutil.copyfile(ckpt, ckpt.with_name(f"{args.run}-hold.pt"))
        if deadline and time.time() > deadline:
            print(f"time budget reached at step {step}; run again to resume", flush=True)
            save_state(ckpt, model, opt, batches, step, log, wall, vocab, plan)
            return
    save_state(ckpt, model, opt, batches, step, log, wall, vocab, plan)
    export(model, vocab, meta, step, log, wall, args)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" x{os.cpu_count()}"
    except OSError:
        pass
    return "unknown"


def expand_state_dict(sd: dict, vocab: np.ndarray, n_vocab: int = 50257) -> dict:
    """The compact model's weights as a full model's: token vocab[i] gets compact row i, every
    other token the shared last row. The full model's softmax then equals the compact loss's."""
    import torch

    sd = dict(sd)
    wte = sd["transformer.wte.weight"]
    big = wte[-1].repeat(n_vocab, 1).clone()
    big[torch.from_numpy(np.asarray(vocab, dtype=np.int64))] = wte[:-1]
    sd["transformer.wte.weight"] = big
    sd["lm_head.weight"] = big
    return sd


def export(model, vocab, meta, step, log, wall, args) -> None:
    """Expand the compact rows to GPT-2's 50,257, save a float32 checkpoint, convert to int8."""
    full = make_model(50257, args)
    full.load_state_dict(expand_state_dict(model.state_dict(), vocab))
    work = STATE / f"{args.run}-checkpoint"
    full.save_pretrained(work, safe_serialization=True)
    record = {**meta, "run": args.run, "steps_done": step, "tokens_seen": step * args.batch * (args.ctx - 1),
              "wall_hours": round(wall / 3600, 3), "log": log}
    from gpt2web.host.convert import convert

    convert(str(work), DEMO, dtype=args.dtype, name="demo", description=DESCRIPTION, examples=EXAMPLES)
    for old in DEMO.glob("*.bin"):
        if old.name not in {s["file"] for s in json.loads((DEMO / "manifest.json").read_text())["shards"]}:
            old.unlink()
    (DEMO / "training.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {DEMO}; float32 checkpoint in {work}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probe", action="store_true", help="measure the speed of a few sizes and exit")
    ap.add_argument("--finish", action="store_true", help="convert the last checkpoint without training further")
    ap.add_argument("--run", default="demo-v2", help="name of the checkpoint in the cache")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--steps", type=int, default=5500)
    ap.add_argument("--warmup", type=int, default=300, help="steps of linear warm-up")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--min-count", type=int, default=5, help="rarer tokens share one output row in training")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hours", type=float, default=0, help="stop (resumably) after this many hours")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--dtype", default="int8")
    args = ap.parse_args()
    probe(args) if args.probe else train(args)


if __name__ == "__main__":
    main()
