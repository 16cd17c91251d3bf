#!/usr/bin/env python3
"""Shard sizes and quantization error of each format on the GPT-2 124M shape (host only).

Builds GPT-2 small's exact shape with random weights (transformers, fixed seed; cached in
build/), converts it with `gpt2web convert` in every format and prints a table. Real GPT-2
weights give other error figures: run `gpt2web convert gpt2 --dtype int8` online to see them.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "py"))


def main() -> None:
    from gpt2web.host.convert import convert

    ckpt = ROOT / "build" / "gpt2-124m-random"
    if not (ckpt / "model.safetensors").is_file():
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)
        GPT2LMHeadModel(GPT2Config()).save_pretrained(ckpt, safe_serialization=True)
    rows = []
    for dtype, group in [("float32", 0), ("float16", 0), ("int8", 0), ("int8", 128), ("int8", 64), ("int8", 32)]:
        out = ROOT / "build" / f"q-{dtype}-{group}"
        m = convert(str(ckpt), out, dtype=dtype, group_size=group, log=lambda s: None)
        rep = m["quantization_error"]
        size = sum(s["bytes"] for s in m["shards"])
        label = dtype + (f" group {group}" if group else (" per row" if dtype == "int8" else ""))
        rows.append((label, size, rep))
        print(f"| {label} | {size / 1e6:.1f} MB | {rep['max_logit_diff']:.2e} | "
              f"{rep['max_logit_diff'] / rep['logit_scale']:.2e} | {rep['top1_agreement'] * 100:.2f}% | "
              f"{rep['kl_divergence']:.2e} |", flush=True)


if __name__ == "__main__":
    print("| format | shards | max abs logit diff | relative to logit scale | top-1 agreement | KL (nats/token) |")
    print("|---|---|---|---|---|---|")
    main()
