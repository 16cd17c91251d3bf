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


def test_sensible_continuations(demo):
    top = demo.next_tokens("In the beginning God created the", top=5)
    assert " heaven" in [t["token"] for t in top] or " earth" in [t["token"] for t in top]
    gen = demo.generate("And the LORD spake unto Moses,", SamplingParams(temperature=0), max_tokens=8)
    list(gen)
    assert gen.text.strip()  # greedy text is recorded in weights/demo/README.md


def test_fixed_seed_fixed_text(demo):
    a = demo.generate("Blessed are the", SamplingParams(seed=2024, temperature=0.9, top_k=40), max_tokens=20)
    b = demo.generate("Blessed are the", SamplingParams(seed=2024, temperature=0.9, top_k=40), max_tokens=20)
    assert [s["id"] for s in a] == [s["id"] for s in b]
