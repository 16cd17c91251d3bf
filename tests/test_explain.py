"""The views' numbers (explain.py, and the CLI's attention / lens / neighbors) against PyTorch.

The checkpoint has every tensor random: biases, layer-norm gains and biases included (the
default initialisation sets biases to 0 and gains to 1, which would hide a missing bias or a
gain applied in the wrong place), and weights large enough that attention is peaked and the
next-token distribution far from flat. PyTorch's GPT2LMHeadModel with eager attention,
output_attentions and output_hidden_states is the reference.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpt2web.explain import Trace, embedding_map, sampling_view
from gpt2web.host.cli import main
from gpt2web.sampling import SamplingParams

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SHAPE = dict(n_embd=64, n_layer=3, n_head=4, n_positions=64)
TEXT = "In the beginning God created the heaven and the earth. And the earth was"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A GPT-2 whose every parameter is random, saved as a Hugging Face folder."""
    torch.manual_seed(11)
    cfg = transformers.GPT2Config(vocab_size=50257, attn_implementation="eager", **SHAPE)
    model = transformers.GPT2LMHeadModel(cfg)
    g = torch.Generator().manual_seed(12)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "ln_" in name and name.endswith(".weight"):
                p.copy_(1 + 0.4 * r)  # gains around 1, none equal to it
            elif name.endswith(".bias"):
                p.copy_(0.2 * r)
            elif "wte" in name:
                p.copy_(0.3 * r)
            else:
                p.copy_(0.15 * r)
    path = tmp_path_factory.mktemp("all-random-hf")
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="module")
def torch_model(checkpoint):
    m = transformers.GPT2LMHeadModel.from_pretrained(checkpoint, torch_dtype=torch.float32,
                                                      attn_implementation="eager")
    m.eval()
    return m


@pytest.fixture(scope="module")
def model_dir(checkpoint, tmp_path_factory):
    from gpt2web.host.convert import convert

    out = tmp_path_factory.mktemp("all-random") / "model"
    convert(str(checkpoint), out, dtype="float32", report=False, log=lambda m: None)
    return out


@pytest.fixture(scope="module")
def engine(model_dir):
    from gpt2web.engine import Engine

    return Engine.load(model_dir)


@pytest.fixture(scope="module")
def reference(torch_model, engine):
    ids = engine.tokenizer.encode(TEXT)
    with torch.no_grad():
        out = torch_model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    return ids, out


def cli(capsys, *args) -> dict:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_checkpoint_has_no_default_tensors(torch_model):
    for name, p in torch_model.named_parameters():
        assert not torch.all(p == 0) and not torch.all(p == 1), name


def test_attention_weights_match_pytorch(engine, reference):
    ids, out = reference
    trace = Trace(engine.model, ids)
    T = len(ids)
    for layer, ref in enumerate(out.attentions):  # [1, H, T, T] each
        ref = ref[0].numpy()
        assert ref.max() > 0.9  # peaked: the comparison means something
        for head in range(SHAPE["n_head"]):
            np.testing.assert_allclose(trace.attention(layer, head), ref[head], atol=1e-5, rtol=0)
        np.testing.assert_allclose(trace.attention(layer), ref.mean(axis=0), atol=1e-5, rtol=0)
    w = trace.attention(0, 1)
    assert w.shape == (T, T) and np.allclose(w.sum(axis=1), 1) and not np.triu(w, 1).any()


def test_cli_attention_json_matches_pytorch(capsys, model_dir, reference):
    ids, out = reference
    res = cli(capsys, "attention", TEXT, "--layer", "2", "--head", "3", "--json", "--model", str(model_dir))
    assert set(res) == {"tokens", "layer", "head", "weights"}
    assert [t["id"] for t in res["tokens"]] == ids and res["layer"] == 2 and res["head"] == 3
    np.testing.assert_allclose(np.array(res["weights"]), out.attentions[2][0, 3].numpy(), atol=1e-5, rtol=0)
    mean = cli(capsys, "attention", TEXT, "--layer", "1", "--json", "--model", str(model_dir))
    assert mean["head"] is None
    np.testing.assert_allclose(np.array(mean["weights"]), out.attentions[1][0].mean(0).numpy(), atol=1e-5, rtol=0)


def lens_reference(torch_model, out) -> list[np.ndarray]:
    """Probabilities at the last position read after 0..n_layer blocks. transformers' last
    hidden state already has ln_f applied; the others are the raw residual stream."""
    tr = torch_model.transformer
    probs = []
    with torch.no_grad():
        for k, h in enumerate(out.hidden_states):
            x = h[0, -1]
            if k < len(out.hidden_states) - 1:
                x = tr.ln_f(x)
            probs.append(torch.softmax(torch_model.lm_head(x).double(), -1).numpy())
    np.testing.assert_allclose(probs[-1], torch.softmax(out.logits[0, -1].double(), -1).numpy(), rtol=2e-5)
    return probs


def test_cli_lens_matches_pytorch(capsys, model_dir, torch_model, reference):
    ids, out = reference
    ref = lens_reference(torch_model, out)
    res = cli(capsys, "lens", TEXT, "--top", "8", "--json", "--model", str(model_dir))
    assert [t["id"] for t in res["tokens"]] == ids
    assert [L["layer"] for L in res["layers"]] == list(range(SHAPE["n_layer"] + 1))
    for L, p in zip(res["layers"], ref):
        want = np.argsort(-p, kind="stable")[:8]
        assert [t["id"] for t in L["top"]] == want.tolist(), L["layer"]
        np.testing.assert_allclose([t["prob"] for t in L["top"]], p[want], rtol=1e-4)
    assert ref[-1].max() > 1000 / 50257  # far from flat
    # The last layer is the model's own next-token table.
    nxt = cli(capsys, "next", TEXT, "--top", "8", "--json", "--model", str(model_dir))
    assert [t["id"] for t in res["layers"][-1]["top"]] == [t["id"] for t in nxt]
    np.testing.assert_allclose([t["prob"] for t in res["layers"][-1]["top"]], [t["prob"] for t in nxt], rtol=1e-5)


def test_cli_neighbors_match_pytorch_cosines(capsys, model_dir, torch_model, engine):
    wte = torch_model.transformer.wte.weight.detach().double()
    tok = engine.tokenizer.encode(" God")[0]
    cos = torch.nn.functional.cosine_similarity(wte, wte[tok][None], dim=1).numpy()
    cos[tok] = -np.inf
    want = np.argsort(-cos, kind="stable")[:12]
    for arg in (" God", str(tok)):
        res = cli(capsys, "neighbors", arg, "--top", "12", "--json", "--model", str(model_dir))
        assert res["token"] == {"id": tok, "token": " God"}
        assert [n["id"] for n in res["neighbors"]] == want.tolist()
        np.testing.assert_allclose([n["cosine"] for n in res["neighbors"]], cos[want], atol=1e-5, rtol=0)
        assert tok not in [n["id"] for n in res["neighbors"]]


def test_embedding_map_is_the_pca_of_the_rows(engine, torch_model):
    ids = engine.tokenizer.encode(" the earth was")
    res = embedding_map(engine.model, ids, per_token=4)
    pts = res["points"]
    assert [p["id"] for p in pts[:len(ids)]] == ids and len(pts) == len(ids) * 5
    wte = torch_model.transformer.wte.weight.detach().double()
    rows = wte[[p["id"] for p in pts]]
    x = rows - rows.mean(0)
    evals, evecs = torch.linalg.eigh(x.T @ x)  # the covariance's eigenvectors, largest last
    v = evecs.flip(1)
    ref = (x @ v[:, :2]).numpy()
    ours = np.array([[p["x"], p["y"]] for p in pts])
    for axis in range(2):  # a component's sign is a convention: compare up to it
        sign = np.sign(ours[:, axis] @ ref[:, axis])
        np.testing.assert_allclose(ours[:, axis], sign * ref[:, axis], atol=1e-5 * np.abs(ref).max())
    var = (evals.flip(0) / evals.sum()).numpy()[:2]
    np.testing.assert_allclose(res["explained"], var, rtol=1e-6)


def hf_sampling(logits: np.ndarray, t: float, k: int, p: float) -> np.ndarray:
    """The sampling distribution as transformers' logits warpers build it."""
    from transformers.generation.logits_process import (TemperatureLogitsWarper, TopKLogitsWarper,
                                                        TopPLogitsWarper)

    x = torch.tensor(logits, dtype=torch.float64)[None]
    x = TemperatureLogitsWarper(t)(None, x)
    if k:
        x = TopKLogitsWarper(k)(None, x)
    if p < 1:
        x = TopPLogitsWarper(p)(None, x)
    return torch.softmax(x, -1)[0].numpy()


@pytest.mark.parametrize("t, k, p", [(1.0, 0, 1.0), (0.7, 20, 1.0), (1.3, 0, 0.8), (0.9, 50, 0.6)])
def test_sampling_view_matches_transformers_warpers(engine, reference, t, k, p):
    ids, out = reference
    logits = Trace(engine.model, ids).logits()
    view = sampling_view(logits, SamplingParams(t, k, p, seed=3), top=60, samples=200)
    want = hf_sampling(logits, t, k, p)
    model_p = torch.softmax(torch.tensor(logits, dtype=torch.float64), -1).numpy()
    temp_p = torch.softmax(torch.tensor(logits, dtype=torch.float64) / t, -1).numpy()
    kept = np.flatnonzero(want > 0)
    assert view["kept"] == len(kept)
    assert view["top_k_cut"] == (k or None) and view["top_p_cut"] == (len(kept) if p < 1 else None)
    rows = view["rows"]
    assert [r["rank"] for r in rows] == list(range(1, 61))
    np.testing.assert_allclose([r["prob"] for r in rows], model_p[[r["id"] for r in rows]], rtol=1e-4)
    np.testing.assert_allclose([r["temp_prob"] for r in rows], temp_p[[r["id"] for r in rows]], rtol=1e-4)
    np.testing.assert_allclose([r["sample_prob"] for r in rows], want[[r["id"] for r in rows]], rtol=1e-4, atol=1e-12)
    assert [r["kept"] for r in rows] == [bool(want[r["id"]] > 0) for r in rows]
    assert view["excluded_mass"] == pytest.approx(1 - model_p[kept].sum(), rel=1e-4, abs=1e-9)
    assert view["excluded_temp_mass"] == pytest.approx(1 - temp_p[kept].sum(), rel=1e-4, abs=1e-9)
    counts = dict(view["counts"])
    assert sum(counts.values()) == 200 and all(want[i] > 0 for i in counts)
    again = sampling_view(logits, SamplingParams(t, k, p, seed=3), top=5, samples=200)
    assert again["counts"] == view["counts"]  # seeded


def test_sampling_view_greedy(engine, reference):
    logits = Trace(engine.model, reference[0]).logits()
    view = sampling_view(logits, SamplingParams(0, 40, 1.0, seed=1), top=5)
    best = int(np.argmax(logits))
    assert view["kept"] == 1 and view["rows"][0]["id"] == best and view["rows"][0]["sample_prob"] == 1
    assert [r["kept"] for r in view["rows"]] == [True, False, False, False, False]


def test_generation_without_the_cache_writes_the_same_and_reads_everything(engine):
    steps = {}
    for use_cache in (True, False):
        gen = engine.generate("And God said", SamplingParams(temperature=0.9, seed=4), max_tokens=6, stop_at_eot=False)
        gen.use_cache = use_cache
        steps[use_cache] = list(gen)
    n0 = len(engine.tokenizer.encode("And God said"))
    assert [s["id"] for s in steps[True]] == [s["id"] for s in steps[False]]
    for a, b in zip(steps[True], steps[False]):
        assert a["prob"] == pytest.approx(b["prob"], rel=1e-4)
    assert [s["read"] for s in steps[True]] == [n0 + 1, 1, 1, 1, 1, 0]
    assert [s["read"] for s in steps[False]] == [n0 + n0 + 1] + [n0 + i + 1 for i in range(1, 5)] + [0]


def test_trace_logits_equal_the_forward_pass(engine, reference):
    ids = reference[0]
    logits = engine.model.forward(ids, engine.model.new_cache())
    np.testing.assert_allclose(Trace(engine.model, ids).logits(), logits, atol=1e-5 * np.abs(logits).max(), rtol=0)


@pytest.mark.parametrize("args, words", [
    (["attention", "x", "--layer", "3"], "the layer must be a whole number from 0 to 2"),
    (["attention", "x", "--layer", "0", "--head", "4"], "the head must be a whole number from 0 to 3"),
    (["attention", "", "--layer", "0"], "the prompt is empty"),
    (["lens", "x", "--top", "0"], "top must be a whole number from 1 to 1000"),
    (["neighbors", "the cat"], "is 2 tokens"),
    (["neighbors", "50257"], "the token id must be a whole number from 0 to 50256"),
    (["neighbors", ""], "give a token"),
])
def test_cli_mistakes_get_one_line(capsys, model_dir, args, words):
    assert main(args + ["--model", str(model_dir)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def test_cli_tables_are_readable(capsys, model_dir):
    assert main(["attention", "And God said", "--layer", "0", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "mean over heads" in out and "' God'" in out
    assert main(["lens", "And God said", "--top", "2", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "embeddings" in out and "block 3 (= next)" in out
    assert main(["neighbors", " God", "--top", "3", "--model", str(model_dir)]) == 0
    assert "cosine" in capsys.readouterr().out
