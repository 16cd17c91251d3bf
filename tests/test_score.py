"""Scoring texts of any length: the sliding window against PyTorch computing the same windows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import build_hf_checkpoint
from gpt2web.engine import Engine, PromptError, sliding_windows
from gpt2web.tokenizer import EOT_ID

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
N_CTX = 96  # a short context, so that 2,000 tokens take many windows
SHAPE = dict(n_embd=64, n_layer=2, n_head=4, n_positions=N_CTX)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return build_hf_checkpoint(tmp_path_factory.mktemp("score-hf"), seed=11, every_tensor_random=True, **SHAPE)


@pytest.fixture(scope="module")
def model_dir(checkpoint, tmp_path_factory) -> Path:
    from gpt2web.host.convert import convert

    out = tmp_path_factory.mktemp("score-weights") / "m"
    convert(str(checkpoint), out, dtype="float32", report=False, log=lambda m: None)
    return out


@pytest.fixture(scope="module")
def engine(model_dir) -> Engine:
    return Engine.load(model_dir)


@pytest.fixture(scope="module")
def reference(checkpoint):
    model = transformers.GPT2LMHeadModel.from_pretrained(checkpoint, torch_dtype=torch.float32)
    model.eval()
    return model


def long_text(engine: Engine, n_tokens: int) -> str:
    """Whole lines of the demo model's held-out KJV chapters and Python docs, at least n_tokens long."""
    sources = json.loads((ROOT / "weights" / "demo" / "heldout.json").read_text())["sources"]
    lines, text = "\n".join(sources["kjv"] + sources["python-docs"]).splitlines(), ""
    for line in lines:
        text += line + "\n"
        if len(engine.tokenizer.encode(text)) >= n_tokens:
            return text
    raise AssertionError("the held-out text is too short")


def window_start(i: int, n: int, n_ctx: int, stride: int) -> int:
    """Where the window that scores token i starts, worked out per token (not by walking the
    windows as the engine does): the first window ending after i, the last one moved back to
    end at the text's end."""
    if i < n_ctx:
        return 0
    return min(((i - n_ctx) // stride + 1) * stride, n - n_ctx)


def torch_score(model, ids: list[int], n_ctx: int, stride: int) -> tuple[np.ndarray, list[int]]:
    """log p(ids[i] | the window's tokens before it), each window run on its own in PyTorch."""
    inputs = [EOT_ID] + ids[:-1]
    runs: dict[int, np.ndarray] = {}
    logp, context = [], []
    for i, t in enumerate(ids):
        start = window_start(i, len(ids), n_ctx, stride)
        if start not in runs:
            with torch.no_grad():
                runs[start] = model(torch.tensor([inputs[start:start + n_ctx]])).logits[0]
        logp.append(float(torch.log_softmax(runs[start][i - start].double(), -1)[t]))
        context.append(i - start + 1)
    return np.array(logp), context


@pytest.mark.parametrize("n_tokens, stride", [(2000, None), (700, 37), (700, N_CTX)])
def test_long_score_matches_pytorch_windows(engine, reference, n_tokens, stride):
    text = long_text(engine, n_tokens)
    res = engine.score(text, stride=stride)
    ids = engine.tokenizer.encode(text)
    assert len(ids) >= n_tokens and [t["id"] for t in res["tokens"]] == ids
    want_stride = N_CTX // 2 if stride is None else stride
    assert (res["n_ctx"], res["stride"]) == (N_CTX, want_stride)
    want_logp, want_context = torch_score(reference, ids, N_CTX, want_stride)
    assert [t["context"] for t in res["tokens"]] == want_context
    assert res["windows"] == len(set(window_start(i, len(ids), N_CTX, want_stride) for i in range(len(ids))))
    got_logp = np.log([t["prob"] for t in res["tokens"]])
    # Every tensor is random, so these are real, varied probabilities: a relative bound.
    err = np.abs(got_logp - want_logp).max()
    assert err < 1e-4, f"log-probability off by {err:.3g} (relative error of the probability)"
    assert res["perplexity"] == pytest.approx(math.exp(-want_logp.mean()), rel=1e-5)
    # Past the first window, every token saw at least n_ctx - stride + 1 tokens.
    assert min(want_context[N_CTX:]) >= N_CTX - want_stride + 1


def test_stride_one_gives_every_token_a_full_context(engine, reference):
    ids = engine.tokenizer.encode(long_text(engine, 120))[:120]
    res = engine.score_ids(ids, stride=1)
    assert [t["context"] for t in res["tokens"]] == [min(i + 1, N_CTX) for i in range(120)]
    want_logp, _ = torch_score(reference, ids, N_CTX, 1)
    assert np.abs(np.log([t["prob"] for t in res["tokens"]]) - want_logp).max() < 1e-4


def test_ranks_are_those_of_the_windows_logits(engine, reference):
    ids = engine.tokenizer.encode(long_text(engine, 300))[:300]
    res = engine.score_ids(ids)
    inputs = [EOT_ID] + ids[:-1]
    for i in (0, 95, 96, 200, 299):
        start = window_start(i, len(ids), N_CTX, N_CTX // 2)
        with torch.no_grad():
            row = reference(torch.tensor([inputs[start:start + N_CTX]])).logits[0, i - start].numpy()
        assert res["tokens"][i]["rank"] == 1 + int((row > row[ids[i]]).sum())


def test_a_text_that_fits_is_one_window_as_before(engine, reference):
    ids = engine.tokenizer.encode(long_text(engine, N_CTX))[:N_CTX]  # exactly n_ctx tokens
    res = engine.score_ids(ids)
    assert res["windows"] == 1 and [t["context"] for t in res["tokens"]] == list(range(1, N_CTX + 1))
    with torch.no_grad():
        want = torch.log_softmax(reference(torch.tensor([[EOT_ID] + ids[:-1]])).logits[0].double(), -1).numpy()
    assert np.abs(np.log([t["prob"] for t in res["tokens"]]) - want[np.arange(N_CTX), ids]).max() < 1e-4


@pytest.mark.parametrize("n, n_ctx, stride", [(1, 4, 2), (4, 4, 2), (5, 4, 2), (10, 4, 3), (10, 4, 4),
                                              (10, 4, 1), (1000, 128, 64), (1001, 128, 100)])
def test_windows_score_every_token_once(n, n_ctx, stride):
    seen = []
    for start, first, end in sliding_windows(n, n_ctx, stride):
        assert 0 <= start <= first < end <= n and end - start <= n_ctx
        seen += range(first, end)
        assert all(i - start + 1 >= min(i + 1, n_ctx - stride + 1) for i in range(first, end))
    assert seen == list(range(n))


@pytest.mark.parametrize("stride", [0, -3, 97, 2.5, True, "8"])
def test_bad_stride_is_named(engine, stride):
    with pytest.raises(PromptError, match="stride"):
        engine.score("In the beginning", stride=stride)


def test_empty_text_is_refused(engine):
    with pytest.raises(PromptError, match="empty"):
        engine.score("")


def test_cli_scores_a_long_text_from_stdin(engine, model_dir):
    from test_convert_cli import run_cli

    text = long_text(engine, 400)
    r = run_cli("score", "-", "--model", str(model_dir), "--stride", "40", "--json", stdin=text)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    want = engine.score(text, stride=40)
    assert [t["id"] for t in got["tokens"]] == [t["id"] for t in want["tokens"]]
    assert [t["context"] for t in got["tokens"]] == [t["context"] for t in want["tokens"]]
    assert (got["stride"], got["windows"], got["n_ctx"]) == (40, want["windows"], N_CTX)
    assert got["perplexity"] == pytest.approx(want["perplexity"], rel=1e-9)
    table = run_cli("score", "-", "--model", str(model_dir), stdin=text)
    assert table.returncode == 0, table.stderr
    assert f"windows, {N_CTX // 2} tokens apart" in table.stdout
    bad = run_cli("score", "hello", "--model", str(model_dir), "--stride", "0")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "stride" in bad.stderr
