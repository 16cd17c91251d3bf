"""Generation as the page and the CLI use it: steps, stops, streaming text, prompts."""

from __future__ import annotations

import numpy as np
import pytest

from gpt2web.engine import Engine, PromptError
from gpt2web.sampling import SamplingParams, softmax
from gpt2web.tokenizer import EOT_ID


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return Engine.load(tiny_model_dir)


def test_steps_show_the_models_real_probabilities(engine):
    gen = engine.generate("The cat sat on the", SamplingParams(seed=5, temperature=0.8, top_k=40), max_tokens=6,
                          n_candidates=8)
    ids = list(gen.prompt_ids)
    for step in gen:
        probs = softmax(engine.logits(ids))  # recomputed from scratch, no cache
        assert step["prob"] == pytest.approx(probs[step["id"]], rel=1e-5)
        for c in step["candidates"]:
            assert c["prob"] == pytest.approx(probs[c["id"]], rel=1e-5)
            assert c["token"] == engine.tokenizer.token_label(c["id"])
        assert sum(c["sample_prob"] for c in step["candidates"]) <= 1 + 1e-9
        ids.append(step["id"])
    assert gen.reason == "max_tokens" and len(gen.ids) == 6


def test_forced_token_is_appended(engine):
    gen = engine.generate("Hello", SamplingParams(temperature=0), max_tokens=3)
    first = gen.step()
    forced = first["candidates"][3]["id"]
    second = gen.step(forced_id=forced)
    assert second["id"] == forced and gen.ids[1] == forced
    with pytest.raises(PromptError, match="not in the vocabulary"):
        gen.step(forced_id=10**6)


def test_streamed_text_never_breaks_a_character(engine):
    # Force the bytes of 大语言模型 🙂 one token at a time: the text pieces are whole characters.
    target = engine.tokenizer.encode("大语言模型 🙂")
    gen = engine.generate("x", SamplingParams(temperature=0), max_tokens=len(target))
    pieces = [gen.step(forced_id=t)["text"] for t in target]
    assert "".join(pieces) == "大语言模型 🙂"
    assert all("\ufffd" not in p for p in pieces)
    assert "" in pieces  # some tokens are only part of a character


def test_context_full_stops_cleanly(engine):
    n_ctx = engine.model.config.n_ctx
    prompt = " a" * (n_ctx - 3)
    gen = engine.generate(prompt, SamplingParams(temperature=0), max_tokens=50, stop_at_eot=False)
    steps = list(gen)
    assert gen.reason == "context_full"
    assert len(gen.prompt_ids) + len(steps) == n_ctx + 1  # every position used, then one more pick


def test_eot_ends_generation(engine):
    gen = engine.generate("Hi", SamplingParams(temperature=0), max_tokens=5)
    step = gen.step(forced_id=EOT_ID)
    assert step["done"] and step["reason"] == "eot" and step["text"] == ""


@pytest.mark.parametrize("prompt, match", [("", "empty"), ("ab\ud800", "surrogate"), (" x" * 600, "at most")])
def test_bad_prompts_are_explained(engine, prompt, match):
    with pytest.raises(PromptError, match=match):
        engine.generate(prompt)


def test_odd_unicode_prompts_work(engine):
    for prompt in ["\u200d\u0301", "\x00\x1f", "مرحبا", "🙂" * 5, "\r\n\t", "<|endoftext|>"]:
        assert engine.next_tokens(prompt, top=2)


def test_score_matches_step_probabilities(engine):
    res = engine.score("In the beginning")
    ids = [t["id"] for t in res["tokens"]]
    probs = softmax(engine.logits([EOT_ID]))
    assert res["tokens"][0]["prob"] == pytest.approx(probs[ids[0]], rel=1e-5)
    assert res["perplexity"] == pytest.approx(np.exp(-np.mean(np.log([t["prob"] for t in res["tokens"]]))))
