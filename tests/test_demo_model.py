"""The shipped demo model as an oracle: it must predict held-out text far better than chance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gpt2web.engine import Engine
from gpt2web.sampling import SamplingParams
from gpt2web.tokenizer import EOT_ID

DEMO = Path(__file__).resolve().parents[1] / "weights" / "demo"


@pytest.fixture(scope="module")
def demo() -> Engine:
    return Engine.load(DEMO)


@pytest.fixture(scope="module")
def oracle() -> dict:
    return json.loads((DEMO / "oracle.json").read_text())


def heldout_ids(eng: Engine) -> list[int]:
    ids: list[int] = []
    for chapter in (DEMO / "heldout.txt").read_text().splitlines():
        ids += eng.tokenizer.encode(chapter, allow_special=False) + [EOT_ID]
    return ids


def test_demo_is_gpt2_shaped_with_the_real_vocabulary(demo):
    cfg = demo.model.config
    assert cfg.n_vocab == 50257 and demo.tokenizer.n_vocab == 50257
    assert sum(s["bytes"] for s in demo.manifest["shards"]) < 30e6


def test_beats_a_unigram_baseline_on_heldout_text(demo, oracle):
    ids = heldout_ids(demo)
    step = demo.model.config.n_ctx - 1
    ranks = np.array([t["rank"] for i in range(0, len(ids), step) for t in demo.score_ids(ids[i:i + step])["tokens"]])
    arr = np.array(ids)
    model = {"top1": float((ranks == 1).mean()), "top5": float((ranks <= 5).mean())}
    unigram = {"top1": float((arr == oracle["unigram_top5"][0]).mean()),
               "top5": float(np.isin(arr, oracle["unigram_top5"]).mean())}
    measured = oracle["measured"]
    # The same numbers the report script measured (the model is deterministic), up to float noise...
    assert model["top1"] == pytest.approx(measured["model_top1"], abs=0.01)
    assert model["top5"] == pytest.approx(measured["model_top5"], abs=0.01)
    # ...and the claim they support: a clear margin over always guessing the commonest tokens.
    # The measured ratios are ~2x or more (see weights/demo/README.md); 1.5x leaves room for noise.
    assert model["top1"] >= 1.5 * unigram["top1"]
    assert model["top5"] >= 1.5 * unigram["top5"]


def test_heldout_perplexity_is_far_below_chance(demo):
    ids = heldout_ids(demo)[:500]
    res = demo.score_ids(ids[:demo.model.config.n_ctx - 1])
    assert res["perplexity"] < 200  # chance is 50,257


@pytest.fixture(scope="module")
def reference(demo):
    """PyTorch's forward pass over the demo's own (dequantized) weights: an independent engine."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from conftest import torch_model_from

    return torch_model_from(demo.model)


def torch_next_logits(reference, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return reference(torch.tensor([ids])).logits[0, -1].double().numpy()


def test_next_token_table_and_greedy_text_are_pytorchs(demo, reference):
    """The table the CLI and the page show, and the greedy continuation, computed by PyTorch."""
    prompt = "In the beginning God created the"
    top = demo.next_tokens(prompt, top=5)
    z = torch_next_logits(reference, demo.tokenizer.encode(prompt))
    p = np.exp(z - z.max())
    p /= p.sum()
    assert [t["id"] for t in top] == list(np.argsort(-p, kind="stable")[:5])
    assert [t["prob"] for t in top] == pytest.approx(p[[t["id"] for t in top]], rel=1e-4)
    assert {" heaven", " earth"} & {t["token"] for t in top}  # Genesis 1:1, which it was trained on

    gen = demo.generate("And the LORD spake unto Moses,", SamplingParams(temperature=0), max_tokens=8)
    list(gen)
    ids = demo.tokenizer.encode("And the LORD spake unto Moses,")
    want = []
    for _ in range(8):
        want.append(int(np.argmax(torch_next_logits(reference, ids + want))))
    assert gen.ids == want and gen.text == demo.tokenizer.decode(want)


def reference_draws(reference, prompt_ids, seed, temperature, top_k, n):
    """Seeded sampling as the docs define it (gpt2web.sampling.Sampler.draw), written out again
    over PyTorch's logits: u from random.Random(seed) lands in the temperature distribution laid
    out in id order; a token outside the top k means drawing again from random.Random(u * 2^53)."""
    import random

    rng, ids, out = random.Random(seed), list(prompt_ids), []
    for _ in range(n):
        z = torch_next_logits(reference, ids)
        w = np.exp((z - z.max()) / temperature)
        cum = np.cumsum(w)
        keep = set(np.argsort(-z, kind="stable")[:top_k].tolist())
        u = rng.random()
        again = random.Random(int(u * 2**53))
        while True:
            i = min(int(np.searchsorted(cum, u * cum[-1], side="right")), len(w) - 1)
            if i in keep:
                break
            u = again.random()
        ids.append(i)
        out.append(i)
    return out


def test_fixed_seed_gives_the_text_an_independent_sampler_draws(demo, reference):
    """The same seed, the same text: the one that the documented draw gives over PyTorch's
    probabilities, not just the same as a second run of the same code."""
    params = SamplingParams(seed=2024, temperature=0.9, top_k=40)
    gen = demo.generate("Blessed are the", params, max_tokens=20, stop_at_eot=False)
    got = [s["id"] for s in gen]
    assert got == reference_draws(reference, gen.prompt_ids, 2024, 0.9, 40, 20)
