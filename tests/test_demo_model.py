"""The shipped demo model: what it claims to be, checked against PyTorch and held-out text.

`oracle.json` was computed by PyTorch on the float32 checkpoint that training produced (by
`scripts/demo_model_report.py --write`), not by this engine; `heldout.json` holds the first
documents of each source that training never saw.
"""

from __future__ import annotations

import collections
import json
import math
from pathlib import Path

import numpy as np
import pytest

from gpt2web.engine import Engine
from gpt2web.sampling import SamplingParams
from gpt2web.tokenizer import EOT_ID

DEMO = Path(__file__).resolve().parents[1] / "weights" / "demo"
MODERN = ("python-docs", "wordnet", "fortunes")


@pytest.fixture(scope="module")
def demo() -> Engine:
    return Engine.load(DEMO)


@pytest.fixture(scope="module")
def oracle() -> dict:
    return json.loads((DEMO / "oracle.json").read_text())


@pytest.fixture(scope="module")
def heldout(demo) -> dict[str, dict]:
    """Each held-out sample scored by the engine (the sliding window `gpt2web score` uses)."""
    out = {}
    for name, docs in json.loads((DEMO / "heldout.json").read_text())["sources"].items():
        ids: list[int] = []
        for d in docs:
            ids += demo.tokenizer.encode(d, allow_special=False) + [EOT_ID]
        res = demo.score_ids(ids[1:], context=ids[0])
        out[name] = {"ids": ids[1:], "tokens": res["tokens"], "perplexity": res["perplexity"]}
    return out


def test_demo_is_gpt2_shaped_with_the_real_vocabulary(demo):
    cfg = demo.model.config
    assert cfg.n_vocab == 50257 and demo.tokenizer.n_vocab == 50257
    assert cfg.n_ctx >= 256
    assert sum(s["bytes"] for s in demo.manifest["shards"]) <= 40e6
    assert demo.manifest["description"] and len(demo.manifest["examples"]) >= 3


def test_next_token_tables_are_the_float32_models(demo, oracle):
    """The bars the page shows for fixed prompts, against PyTorch on the float32 checkpoint:
    int8 rounding moves probabilities a little, never the order of clearly separated ones."""
    assert len(oracle["prompts"]) >= 4
    for case in oracle["prompts"]:
        got = {t["id"]: t["prob"] for t in demo.next_tokens(case["prompt"], top=50)}
        want = case["top"]
        for t in want:
            # int8 rounding moves these by at most ~0.003 (KL 5e-4 nats in the converter's report)
            assert got.get(t["id"], 0.0) == pytest.approx(t["prob"], abs=0.006), case["prompt"]
        if want[0]["prob"] - want[1]["prob"] > 0.05:
            assert max(got, key=got.get) == want[0]["id"], case["prompt"]


def test_heldout_loss_is_the_float32_models(demo, oracle):
    """The first window of every source's held-out text: the engine's loss is PyTorch's."""
    assert {w["source"] for w in oracle["windows"]} == {"kjv", *MODERN}
    for w in oracle["windows"]:
        ids = w["ids"]
        assert len(ids) == demo.model.config.n_ctx
        res = demo.score_ids(ids[1:], context=ids[0])
        loss = -float(np.mean([math.log(t["prob"]) for t in res["tokens"]]))
        assert loss == pytest.approx(w["loss"], abs=0.01), w["source"]  # int8: within ~0.003


def test_the_default_prompt_is_one_the_model_is_fairly_sure_about(demo, oracle):
    """The page opens with the manifest's first example: PyTorch gives its top candidate more
    than 30%, and the engine shows the same candidate first."""
    prompt = demo.manifest["examples"][0]
    case = next(c for c in oracle["prompts"] if c["prompt"] == prompt)
    assert case["top"][0]["prob"] > 0.3
    assert demo.next_tokens(prompt, top=1)[0]["id"] == case["top"][0]["id"]


def frequent5(ids: list[int]) -> float:
    common = {t for t, _ in collections.Counter(ids).most_common(5)}
    return sum(t in common for t in ids) / len(ids)


@pytest.mark.parametrize("source", MODERN)
def test_beats_guessing_the_commonest_tokens_on_heldout_modern_english(heldout, source):
    """Top-5 accuracy at least 1.3x that of always guessing the text's five commonest tokens."""
    h = heldout[source]
    assert len(h["ids"]) >= 2500
    top5 = sum(t["rank"] <= 5 for t in h["tokens"]) / len(h["tokens"])
    assert top5 >= 1.3 * frequent5(h["ids"]), f"top-5 {top5:.3f}, frequent-5 {frequent5(h['ids']):.3f}"


def test_heldout_kjv_perplexity(heldout):
    # The target: at most 30 (chance is 50,257). Measured 26.3 on 20,000 held-out tokens
    # (weights/demo/README.md) and 28.8 on this shorter sample.
    assert heldout["kjv"]["perplexity"] <= 30


@pytest.mark.parametrize("source", ["kjv", "fortunes"])
def test_sure_and_right_on_familiar_text(heldout, source):
    """Bars that are not flat everywhere: on held-out KJV and quotations the top candidate has
    more than 50% and is the token that follows at one step in ten or more."""
    toks = heldout[source]["tokens"]
    assert sum(t["rank"] == 1 and t["prob"] > 0.5 for t in toks) / len(toks) >= 0.1


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
    prompt = "In the beginning God created the"  # Genesis 1:1, in the training text
    top = demo.next_tokens(prompt, top=5)
    z = torch_next_logits(reference, demo.tokenizer.encode(prompt))
    p = np.exp(z - z.max())
    p /= p.sum()
    assert [t["id"] for t in top] == list(np.argsort(-p, kind="stable")[:5])
    assert [t["prob"] for t in top] == pytest.approx(p[[t["id"] for t in top]], rel=1e-4)

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
