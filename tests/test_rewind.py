"""Rewriting from an earlier token: Generation.truncate cuts the KV cache back and the
generation continues from there as if the later tokens had never been written."""

from __future__ import annotations

import json

import pytest

from gpt2web import bridge
from gpt2web.engine import Engine, PromptError
from gpt2web.sampling import SamplingParams


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return Engine.load(tiny_model_dir)


def fresh(engine, ids, **kw):
    """A new generation that is given `ids` (no cache reuse): the reference."""
    gen = engine.generate("The cat sat on the", SamplingParams(0.9, 20, 1, 3), max_tokens=kw.get("max_tokens", 12))
    for i in ids:
        gen.step(forced_id=i)
    return gen


def test_truncate_continues_as_a_fresh_generation(engine):
    gen = engine.generate("The cat sat on the", SamplingParams(0.9, 20, 1, 3), max_tokens=12)
    steps = [gen.step() for _ in range(6)]
    ids = [s["id"] for s in steps]
    plen = len(gen.prompt_ids)
    assert gen.cache.length == plen + 6
    gen.truncate(2)
    assert gen.ids == ids[:2] and gen.cache.length == plen + 2  # cut back, one token re-run
    peek = gen.peek()
    ref = fresh(engine, ids[:2])
    want = ref.peek()
    assert peek["index"] == 2 == want["index"]
    assert [c["id"] for c in peek["candidates"]] == [c["id"] for c in want["candidates"]]
    assert [c["prob"] for c in peek["candidates"]] == pytest.approx([c["prob"] for c in want["candidates"]], rel=1e-5, abs=1e-12)
    # Another token at position 3, then the rest: same bars as a generation given those ids.
    other = peek["candidates"][4]["id"]
    a = [gen.step(forced_id=other), gen.step(forced_id=ids[3])]
    b = [ref.step(forced_id=other), ref.step(forced_id=ids[3])]
    for x, y in zip(a, b):
        assert x["index"] == y["index"] and x["id"] == y["id"] and x["text"] == y["text"]
        assert x["prob"] == pytest.approx(y["prob"], rel=1e-5, abs=1e-12)
        assert [c["prob"] for c in x["candidates"]] == pytest.approx([c["prob"] for c in y["candidates"]], rel=1e-5, abs=1e-12)
    assert gen.text == ref.text


def test_truncate_to_zero_and_after_the_end(engine):
    gen = engine.generate("Hello there", SamplingParams(temperature=0), max_tokens=3)
    first = list(gen)
    assert gen.done and gen.reason == "max_tokens"
    gen.truncate(0)  # back to the prompt: the first token's candidates again
    assert not gen.done and gen.ids == [] and gen.cache.length == len(gen.prompt_ids)
    assert [c["id"] for c in gen.peek()["candidates"]] == [c["id"] for c in first[0]["candidates"]]
    again = list(gen)  # greedy: the same text again, and max_tokens counts from the cut
    assert [s["id"] for s in again] == [s["id"] for s in first] and gen.reason == "max_tokens"
    gen.truncate(3)  # nothing to undo: a finished generation stays finished
    assert gen.done


@pytest.mark.parametrize("n", [-1, 4, 1.5, True, "1"])
def test_truncate_refuses_positions_it_does_not_have(engine, n):
    gen = engine.generate("Hello", SamplingParams(temperature=0), max_tokens=5)
    gen.step(), gen.step(), gen.step()
    with pytest.raises(PromptError, match="cannot go back to token"):
        gen.truncate(n)
    assert len(gen.ids) == 3


def test_partial_characters_are_decoded_after_a_cut(engine):
    # "象" is three byte tokens in GPT-2's vocabulary (after "大", one); cut between them.
    ids = engine.tokenizer.encode("大象")
    assert len(ids) == 4
    gen = engine.generate("x", SamplingParams(temperature=0), max_tokens=10)
    texts = [gen.step(forced_id=i)["text"] for i in ids]
    assert texts == ["大", "", "", "象"]
    gen.truncate(2)  # the decoder still holds the first byte of 象
    rest = [gen.step(forced_id=i)["text"] for i in ids[2:]]
    assert rest == ["", "象"] and gen.text == "大象"


def test_bridge_truncates_and_reports(engine):
    bridge._engines["rw"] = engine
    try:
        start = json.loads(bridge.generate_start("r1", "rw", "Hello", 0, 0, 1, 1, 4, 5))["ok"]
        assert start["prompt_tokens"] == len(engine.tokenizer.encode("Hello"))
        for _ in range(4):
            json.loads(bridge.generate_step("r1", None))
        info = json.loads(bridge.generate_info("r1"))["ok"]
        assert len(info["ids"]) == 4
        assert json.loads(bridge.generate_truncate("r1", 1)) == {"ok": None}
        assert json.loads(bridge.peek("r1"))["ok"]["index"] == 1
        err = json.loads(bridge.generate_truncate("r1", 9))["error"]
        assert err["kind"] == "prompt" and "cannot go back" in err["message"]
    finally:
        bridge._generations.pop("r1", None)
        bridge._engines.pop("rw", None)
