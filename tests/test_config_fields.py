"""Every GPT-2 config field accounted for: run as PyTorch runs it, or refused by name.

Each supported setting is checked against transformers on a checkpoint whose every tensor is
random, so a setting that were read but not applied (or not read at all) moves the logits far
past the tolerance. In the browser the same settings run through the kernels' fast path:
tests/test_kernels.py (test_settings_through_kernels_match_numpy).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import build_hf_checkpoint
from gpt2web.engine import Engine
from gpt2web.host.convert import (MAPPED, NO_EFFECT, REFUSED, ConvertError, config_from_hf, convert,
                                  ignored_config_fields, load_hf_checkpoint)
from gpt2web.kernels import matmul_t_int8
from gpt2web.model import GPT2, GPT2Config
from gpt2web.weights import QuantTensor, WeightsError, parse_manifest, quantize_int8, read_model_dir

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SHAPE = dict(n_embd=64, n_layer=3, n_head=4, n_positions=64)

SETTINGS = {
    "n_inner": dict(n_inner=96),  # not 4 x n_embd
    "scale_attn_by_inverse_layer_idx": dict(scale_attn_by_inverse_layer_idx=True),
    "scale_attn_weights": dict(scale_attn_weights=False),
    "reorder_and_upcast_attn": dict(reorder_and_upcast_attn=True),
    "layer_norm_epsilon": dict(layer_norm_epsilon=0.3),
    **{f"activation {a}": dict(activation_function=a)
       for a in ("gelu", "gelu_python", "relu", "silu", "swish", "quick_gelu", "gelu_pytorch_tanh",
                 "gelu_fast", "gelu_accurate", "gelu_python_tanh")},
    "all at once": dict(n_inner=40, activation_function="relu", scale_attn_by_inverse_layer_idx=True,
                        layer_norm_epsilon=1e-3, reorder_and_upcast_attn=True),
}


def test_every_field_of_transformers_gpt2config_is_accounted_for():
    fields = set(transformers.GPT2Config().to_dict())
    missing = sorted(f for f in fields if f not in MAPPED and f not in NO_EFFECT and f not in REFUSED)
    assert missing == [], f"transformers' GPT2Config has fields the converter does not account for: {missing}"
    # and nothing is in two places at once
    assert not (set(MAPPED) & set(NO_EFFECT)) and not (set(MAPPED) & set(REFUSED)) and not (set(NO_EFFECT) & set(REFUSED))


def torch_logits(folder: Path, ids: list[int]) -> np.ndarray:
    model = transformers.GPT2LMHeadModel.from_pretrained(folder, torch_dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].double().numpy()


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.mark.parametrize("name", list(SETTINGS))
def test_setting_runs_as_pytorch_runs_it(name, tmp_path):
    hf = build_hf_checkpoint(tmp_path / "hf", seed=5, every_tensor_random=True, **SHAPE, **SETTINGS[name])
    convert(str(hf), tmp_path / "m", dtype="float32", report=False, log=lambda m: None)
    eng = Engine.load(tmp_path / "m")
    cfg = eng.model.config
    if "n_inner" in SETTINGS[name]:
        assert cfg.d_mlp == SETTINGS[name]["n_inner"] != 4 * cfg.n_embd
    ids = np.random.default_rng(2).integers(0, 50257, 40).tolist()
    ref = torch_logits(hf, ids)
    ours = eng.model.forward(ids, eng.model.new_cache(), all_logits=True).astype(np.float64)
    err = np.abs(ours - ref).max() / np.abs(ref).max()
    assert err < 1e-5, f"{name}: logits off by {err:.3g} of the logit scale"
    # probabilities, relative (every tensor random: these are far from uniform)
    assert np.abs(log_softmax(ours) - log_softmax(ref)).max() < 1e-4
    # decoding with the cache, one token at a time, agrees too
    cache = eng.model.new_cache()
    eng.model.forward(ids[:30], cache)
    steps = np.stack([eng.model.forward([t], cache) for t in ids[30:]]).astype(np.float64)
    assert np.abs(log_softmax(steps) - log_softmax(ref[30:])).max() < 1e-4


def test_a_setting_ignored_would_be_seen(tmp_path):
    """The guard above has teeth: running the inverse-layer-index model without its setting
    misses PyTorch by far more than the tolerance."""
    hf = build_hf_checkpoint(tmp_path / "hf", seed=5, every_tensor_random=True, **SHAPE,
                             scale_attn_by_inverse_layer_idx=True)
    cfg, tensors = load_hf_checkpoint(hf)
    wrong = GPT2(GPT2Config(**{**cfg.to_dict(), "scale_attn_by_inverse_layer_idx": False}), tensors)
    ids = np.random.default_rng(2).integers(0, 50257, 40).tolist()
    ref = torch_logits(hf, ids)
    got = wrong.forward(ids, wrong.new_cache(), all_logits=True).astype(np.float64)
    assert np.abs(log_softmax(got) - log_softmax(ref)).max() > 1e-2


def hf_config(**overrides) -> dict:
    return {**transformers.GPT2Config(vocab_size=50257, **SHAPE).to_dict(), **overrides}


@pytest.mark.parametrize("overrides, named", [
    (dict(add_cross_attention=True), "add_cross_attention=true is not supported"),
    (dict(tie_word_embeddings=False), "tie_word_embeddings=false is not supported"),
    (dict(is_encoder_decoder=True), "is_encoder_decoder=true is not supported"),
    (dict(pruned_heads={"0": [1]}), "pruned_heads="),
    (dict(activation_function="mish"), "activation_function 'mish' is not supported"),
    (dict(activation_function="gelu_10"), "activation_function 'gelu_10'"),
    (dict(model_type="gpt_neo"), "model_type 'gpt_neo'"),
    (dict(n_inner=0), "n_inner"),
    (dict(n_head=5), "not a multiple of n_head"),
    (dict(scale_attn_weights="yes"), "scale_attn_weights"),
])
def test_unsupported_settings_are_refused_by_name(overrides, named):
    with pytest.raises(ConvertError) as e:
        config_from_hf(hf_config(**overrides))
    assert named in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_the_cli_refuses_in_one_line(tmp_path):
    from test_convert_cli import run_cli

    hf = build_hf_checkpoint(tmp_path / "hf", seed=1, **SHAPE)
    cfg = json.loads((hf / "config.json").read_text())
    (hf / "config.json").write_text(json.dumps({**cfg, "add_cross_attention": True}))
    r = run_cli("convert", str(hf), "--out", str(tmp_path / "out"), "--no-report")
    assert r.returncode == 2 and "add_cross_attention=true is not supported" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_fields_it_does_not_know_are_listed(tmp_path):
    hf = build_hf_checkpoint(tmp_path / "hf", seed=1, **SHAPE)
    cfg = json.loads((hf / "config.json").read_text())
    (hf / "config.json").write_text(json.dumps({**cfg, "rotary_dim": 16, "n_ctx": 64}))
    assert ignored_config_fields(json.loads((hf / "config.json").read_text())) == ["rotary_dim"]
    logs = []
    convert(str(hf), tmp_path / "out", dtype="float32", report=False, log=logs.append)
    assert any("ignored rotary_dim" in line for line in logs), logs


def test_manifest_settings_are_checked_before_any_shard(tmp_path):
    hf = build_hf_checkpoint(tmp_path / "hf", seed=1, **SHAPE, n_inner=96)
    convert(str(hf), tmp_path / "m", dtype="int8", report=False, log=lambda m: None)
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["config"]["n_inner"] == 96 and manifest["config"]["activation"] == "gelu_new"
    for change, named in [({"rotary_dim": 16}, "sets 'rotary_dim', which this engine does not know"),
                          ({"activation": "mish"}, "config.activation 'mish'"),
                          ({"n_inner": -1}, "config.n_inner"),
                          ({"scale_attn_by_inverse_layer_idx": 1}, "scale_attn_by_inverse_layer_idx")]:
        bad = {**manifest, "config": {**manifest["config"], **change}}
        with pytest.raises(WeightsError, match=named):
            parse_manifest(bad)
    # A wrong MLP width in the manifest: the tensors do not fit, and the error says which.
    (tmp_path / "m" / "manifest.json").write_text(json.dumps({**manifest, "config": {**manifest["config"],
                                                                                     "n_inner": 128}}))
    with pytest.raises(WeightsError, match=r"h\.0\.mlp\.c_fc\.w has shape \(96, 64\), the config implies \(128, 64\)"):
        Engine.load(tmp_path / "m")


def test_models_converted_before_these_settings_still_load(tiny_model_dir, tmp_path):
    """A manifest without the new fields (as the shipped demo's) means GPT-2's values."""
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    for key in ("n_inner", "activation", "scale_attn_weights", "scale_attn_by_inverse_layer_idx"):
        manifest["config"].pop(key, None)
    cfg = GPT2Config.from_dict(parse_manifest(manifest)["config"])
    assert (cfg.d_mlp, cfg.activation, cfg.scale_attn_weights, cfg.scale_attn_by_inverse_layer_idx) == (
        4 * cfg.n_embd, "gelu_new", True, False)
    demo = json.loads((Path(__file__).resolve().parents[1] / "weights" / "demo" / "manifest.json").read_text())
    parse_manifest(demo)


@pytest.mark.parametrize("call, named", [
    (lambda w, x, b: matmul_t_int8(x[:, :-1], w, b), "x must be"),
    (lambda w, x, b: matmul_t_int8(x[None], w, b), "x must be"),
    (lambda w, x, b: matmul_t_int8(x, w, b[:-1]), "the bias must have shape"),
    (lambda w, x, b: matmul_t_int8(x, QuantTensor(w.q, w.scale[:-1], 0), b), "the scales of a"),
    (lambda w, x, b: matmul_t_int8(x, QuantTensor(w.q, w.scale, 5), b), "group size 5"),
    (lambda w, x, b: matmul_t_int8(x, QuantTensor(w.q.astype(np.int16), w.scale, 0), b), "2-D int8"),
])
def test_int8_products_check_their_shapes(call, named):
    rng = np.random.default_rng(0)
    w = quantize_int8(rng.standard_normal((7, 32)).astype(np.float32))
    x = rng.standard_normal((3, 32)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    with pytest.raises(ValueError, match=named):
        call(w, x, b)


def test_model_checks_every_tensor_shape(tiny_model_dir):
    manifest, tensors = read_model_dir(tiny_model_dir)
    cfg = GPT2Config.from_dict(manifest["config"])
    for name in ("h.1.attn.c_proj.b", "ln_f.g", "h.0.mlp.c_proj.w"):
        bad = dict(tensors)
        bad[name] = np.asarray(tensors[name])[..., :-1]
        with pytest.raises(WeightsError, match=name.replace(".", r"\.") + " has shape"):
            GPT2(cfg, bad)


def test_the_views_inside_a_step_follow_the_settings_too(tmp_path):
    """gpt2web.explain's trace (attention weights, logit lens) runs the same settings."""
    from gpt2web.explain import Trace

    settings = dict(n_inner=40, activation_function="relu", scale_attn_by_inverse_layer_idx=True,
                    scale_attn_weights=False)
    hf = build_hf_checkpoint(tmp_path / "hf", seed=6, every_tensor_random=True, **SHAPE, **settings)
    convert(str(hf), tmp_path / "m", dtype="float32", report=False, log=lambda m: None)
    eng = Engine.load(tmp_path / "m")
    ids = np.random.default_rng(4).integers(0, 50257, 20).tolist()
    model = transformers.GPT2LMHeadModel.from_pretrained(hf, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True)
    trace = Trace(eng.model, ids)
    for layer, ref in enumerate(out.attentions):
        np.testing.assert_allclose(trace.attention(layer), ref[0].numpy().mean(axis=0), atol=1e-5, rtol=0)
    ref_logits = out.logits[0, -1].double().numpy()  # the trace's logits: after the last token
    assert np.abs(log_softmax(trace.logits().astype(np.float64)) - log_softmax(ref_logits)).max() < 1e-4
