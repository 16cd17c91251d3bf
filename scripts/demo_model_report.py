#!/usr/bin/env python3
"""Measure the shipped demo model through the engine and write weights/demo/README.md (host only).

Reads the training record that train_demo_model.py leaves in build/demo-checkpoint/, evaluates
the converted int8 model (the one the page runs) on the held-out chapters, compares it with
a unigram baseline, writes a few greedy and sampled continuations, and keeps a held-out sample
and the baseline's guesses in weights/demo/ for the oracle tests.
"""

from __future__ import annotations

import collections
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "py"))
sys.path.insert(0, str(ROOT / "scripts"))

from gpt2web.engine import Engine  # noqa: E402
from gpt2web.sampling import SamplingParams  # noqa: E402
from gpt2web.tokenizer import EOT_ID  # noqa: E402

DEMO = ROOT / "weights" / "demo"
WORK = ROOT / "build" / "demo-checkpoint"
PROMPTS = ["In the beginning God created the", "And the LORD spake unto Moses, saying,",
           "Blessed are the", "The LORD is my shepherd;", "And it came to pass, when"]


def evaluate(eng: Engine, ids: list[int]) -> dict:
    """Loss, perplexity and top-1/top-5 accuracy over `ids`, in windows of the model's context,
    each window read after <|endoftext|> (Engine.score_ids, the path `gpt2web score` uses)."""
    step = eng.model.config.n_ctx - 1
    logp, top1, top5, n = 0.0, 0, 0, 0
    for i in range(0, len(ids), step):
        for t in eng.score_ids(ids[i:i + step])["tokens"]:
            logp += math.log(t["prob"])
            top1 += t["rank"] == 1
            top5 += t["rank"] <= 5
            n += 1
    return {"tokens": n, "loss": -logp / n, "perplexity": math.exp(-logp / n), "top1": top1 / n, "top5": top5 / n}


def main() -> None:
    from train_demo_model import build_corpus

    eng = Engine.load(DEMO)
    tok = eng.tokenizer
    train, val = build_corpus()
    counts = collections.Counter()
    for p in train:
        counts.update(tok.encode(p, allow_special=False))
        counts[EOT_ID] += 1
    unigram = [t for t, _ in counts.most_common(5)]
    val_ids: list[int] = []
    for p in val:
        val_ids += tok.encode(p, allow_special=False) + [EOT_ID]
    model = evaluate(eng, val_ids)
    arr = np.array(val_ids)
    base = {"top1": float((arr == unigram[0]).mean()), "top5": float(np.isin(arr, unigram).mean())}
    print(f"int8 model on {model['tokens']:,} held-out tokens: loss {model['loss']:.3f}, perplexity "
          f"{model['perplexity']:.1f}, top-1 {model['top1']:.3f}, top-5 {model['top5']:.3f}; unigram top-1 "
          f"{base['top1']:.3f}, top-5 {base['top5']:.3f}")

    # A held-out sample and the unigram guesses, for the oracle tests (tests/test_demo_model.py).
    heldout = "\n".join(val[:6])
    (DEMO / "heldout.txt").write_text(heldout + "\n")
    sample_ids: list[int] = []
    for p in val[:6]:
        sample_ids += tok.encode(p, allow_special=False) + [EOT_ID]
    sample = evaluate(eng, sample_ids)
    sample_arr = np.array(sample_ids)
    oracle = {"unigram_top5": unigram, "heldout_chapters": 6,
              "measured": {"model_top1": sample["top1"], "model_top5": sample["top5"],
                           "unigram_top1": float((sample_arr == unigram[0]).mean()),
                           "unigram_top5": float(np.isin(sample_arr, unigram).mean()),
                           "tokens": sample["tokens"]}}
    (DEMO / "oracle.json").write_text(json.dumps(oracle, indent=1) + "\n")

    samples = []
    for prompt in PROMPTS:
        greedy = eng.generate(prompt, SamplingParams(temperature=0), max_tokens=30)
        list(greedy)
        sampled = eng.generate(prompt, SamplingParams(temperature=0.8, top_k=40, seed=1), max_tokens=30)
        list(sampled)
        samples.append((prompt, greedy.text, sampled.text))

    training = json.loads((WORK / "training.json").read_text())
    manifest = eng.manifest
    size = sum(s["bytes"] for s in manifest["shards"])
    cfg = manifest["config"]
    q = manifest.get("quantization_error", {})
    lines = [
        "# The demo model", "",
        "A small model with GPT-2's architecture and GPT-2's real tokenizer (50,257 tokens), trained by",
        "`scripts/train_demo_model.py` so that the demo and the tests have a model whose predictions mean",
        "something without downloading GPT-2. It writes King-James-flavoured English; it knows nothing else.",
        "",
        "## Source and licence", "",
        "- Corpus: the King James Version of the Bible, from Debian's `bible-kjv-text` package (read",
        "  with the `bible` program of `bible-kjv`). The package's copyright file: \"The copyright for the",
        "  King James Version text of the Bible is expired since the translation was done in 1611\", and",
        "  the data file \"is provided for unrestricted use\". Verse numbers are dropped; each chapter is",
        "  one paragraph followed by `<|endoftext|>`.",
        f"- Split: every 20th chapter (index 7 mod 20) is held out: {training['train_tokens']:,} training tokens,",
        f"  {training['val_tokens']:,} validation tokens.",
        "- The weights in this folder are the project's own, trained from scratch; they may be used under",
        "  the project's licence.",
        "",
        "## Shape and size", "",
        f"- {cfg['n_layer']} layers, {cfg['n_head']} heads, n_embd {cfg['n_embd']}, context {cfg['n_ctx']} tokens,"
        f" vocabulary {cfg['n_vocab']:,} (tied LM head).",
        f"- Shards: {manifest['dtype']} (per-row scales), {size / 1e6:.1f} MB in {len(manifest['shards'])} files.",
        "- Width and depth were chosen by measured training speed on this 2-core CPU: the tied",
        "  50,257-row embedding dominates both size and training time (the LM head is most of each",
        "  step), so the model is narrow. `train_demo_model.py --probe` (batch 16 x 256, AdamW):",
        "",
        "  | n_embd x layers | tokens/s | int8 size |", "  |---|---|---|",
        "  | 256 x 4 | 839 | 16 MB |", "  | 384 x 4 | 591 | 26 MB |", "  | 384 x 6 | 309 | 30 MB |",
        "  | 512 x 4 | 310 | 38 MB |",
        "",
        "  At ~800 tokens/s, the ~2 hours budget allows ~3 epochs of the corpus at 256 x 4; wider",
        "  models would have seen the text about once.",
        "",
        "## Training", "",
        f"Seed {training['seed']}, {training['steps']} steps of {training['batch']} x {training['ctx']} tokens, AdamW,"
        " cosine schedule; deterministic given the seed.", "",
        "| step | train loss | validation loss |", "|---|---|---|",
    ] + [f"| {r['step']} | {r['train_loss']:.3f} | {r['val_loss']:.3f} |" for r in training["log"]] + [
        "",
        "## Quality (measured through the engine, int8, as the page runs it)", "",
        f"- Held-out loss {model['loss']:.3f} nats/token, **perplexity {model['perplexity']:.1f}** "
        f"on {model['tokens']:,} tokens (float32 PyTorch at the end of training: "
        f"{training['val_perplexity']:.1f}).",
        f"- Next-token accuracy: top-1 {model['top1'] * 100:.1f}%, top-5 {model['top5'] * 100:.1f}%; "
        f"a unigram baseline (always guess the most frequent tokens) gets top-1 {base['top1'] * 100:.1f}%, "
        f"top-5 {base['top5'] * 100:.1f}%.",
    ]
    if q:
        lines.append(f"- int8 vs float32 (converter report): top-1 agreement {q['top1_agreement'] * 100:.1f}%, "
                     f"KL {q['kl_divergence']:.2g} nats/token, max logit difference {q['max_logit_diff']:.3g}.")
    lines += ["", "## Samples", "",
              "Greedy (temperature 0) and sampled (temperature 0.8, top-k 40, seed 1), 30 tokens each,"
              " from `gpt2web generate`:", ""]
    for prompt, g, s in samples:
        lines += [f"- **{prompt}**", f"  - greedy: {prompt} *{g.strip()}*".replace("\n", " "),
                  f"  - sampled: {prompt} *{s.strip()}*".replace("\n", " ")]
    lines += ["", "Regenerate this file with `python3 scripts/demo_model_report.py` after training.", ""]
    (DEMO / "README.md").write_text("\n".join(lines))
    print("wrote", DEMO / "README.md")


if __name__ == "__main__":
    main()
