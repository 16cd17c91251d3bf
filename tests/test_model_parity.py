"""The NumPy model against PyTorch transformers on the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import TINY, build_hf_checkpoint
from gpt2web.host.convert import config_from_hf, load_hf_checkpoint
from gpt2web.model import GPT2, ContextFullError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def torch_logits(folder, ids) -> np.ndarray:
    model = transformers.GPT2LMHeadModel.from_pretrained(folder, torch_dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def prompt_ids(n: int, seed: int = 1) -> list[int]:
    return np.random.default_rng(seed).integers(0, 50257, size=n).tolist()


def assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
    scale = np.abs(ref).max()
    err = np.abs(ours - ref).max()
    assert err <= 1e-4 * scale, f"max abs error {err:.3g} exceeds 1e-4 x logit scale {scale:.3g}"


@pytest.fixture(scope="module")
def full_shape_checkpoint(tmp_path_factory):
    # GPT-2 small's exact shape (124M) with random weights.
    return build_hf_checkpoint(tmp_path_factory.mktemp("gpt2-124m-random"), seed=3)


@pytest.mark.parametrize("n", [1, 17, 300])
def test_tiny_logits_match_pytorch(tiny_checkpoint, n):
    cfg, tensors = load_hf_checkpoint(tiny_checkpoint)
    model = GPT2(cfg, tensors)
    ids = prompt_ids(n)
    assert_close(model.forward(ids, model.new_cache(), all_logits=True), torch_logits(tiny_checkpoint, ids))


@pytest.mark.slow
def test_full_shape_logits_match_pytorch(full_shape_checkpoint):
    cfg, tensors = load_hf_checkpoint(full_shape_checkpoint)
    assert (cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.n_vocab) == (768, 12, 12, 50257)
    model = GPT2(cfg, tensors)
    for n in (1, 17, 300):
        ids = prompt_ids(n, seed=n)
        assert_close(model.forward(ids, model.new_cache(), all_logits=True),
                     torch_logits(full_shape_checkpoint, ids))


@pytest.mark.parametrize("mutation", ["drop every bias", "swap each layer norm's gain and bias",
                                      "ln_2 with ln_1's gain and bias"])
def test_the_parity_checkpoint_sees_a_broken_model(tiny_checkpoint, mutation):
    """Every tensor of the checkpoint is random (default initialisation has biases 0 and gains 1,
    which these mutations leave exactly unchanged): a model missing one of them misses PyTorch
    by far more than the parity tolerance."""
    cfg, tensors = load_hf_checkpoint(tiny_checkpoint)
    broken = dict(tensors)
    for name in tensors:
        if mutation == "drop every bias" and name.endswith(".b") and (".attn." in name or ".mlp." in name):
            broken[name] = np.zeros_like(tensors[name])
        elif mutation.startswith("swap") and name.endswith(".g"):
            broken[name], broken[name[:-1] + "b"] = tensors[name[:-1] + "b"], tensors[name]
        elif mutation.startswith("ln_2") and ".ln_2." in name:
            broken[name] = tensors[name.replace(".ln_2.", ".ln_1.")]
    ids = prompt_ids(17)
    ref = torch_logits(tiny_checkpoint, ids)
    model = GPT2(cfg, broken)
    err = np.abs(model.forward(ids, model.new_cache(), all_logits=True) - ref).max()
    assert err > 100 * 1e-4 * np.abs(ref).max(), f"{mutation}: error {err:.3g} is within the tolerance"


def test_cached_decoding_equals_full_recomputation(tiny_checkpoint):
    cfg, tensors = load_hf_checkpoint(tiny_checkpoint)
    model = GPT2(cfg, tensors)
    ids = prompt_ids(40, seed=7)
    full = model.forward(ids, model.new_cache(), all_logits=True)
    cache = model.new_cache()
    steps = [model.forward(ids[:25], cache)]  # prefill, then one token at a time
    steps += [model.forward([t], cache) for t in ids[25:]]
    cached = np.stack(steps)
    np.testing.assert_allclose(cached, full[24:], atol=1e-4 * np.abs(full).max(), rtol=0)
    assert cache.length == 40


def test_context_limit_is_an_error_not_garbage(tiny_checkpoint):
    cfg, tensors = load_hf_checkpoint(tiny_checkpoint)
    model = GPT2(cfg, tensors)
    cache = model.new_cache()
    model.forward(prompt_ids(cfg.n_ctx - 1), cache)
    model.forward([5], cache)  # exactly full
    with pytest.raises(ContextFullError, match="holds 512 tokens"):
        model.forward([6], cache)
    with pytest.raises(ContextFullError):
        model.forward(prompt_ids(cfg.n_ctx + 1), model.new_cache())


def test_config_rejects_an_activation_it_cannot_run():
    with pytest.raises(ValueError, match="activation_function 'mish' is not supported"):
        config_from_hf({"vocab_size": 10, "n_positions": 8, "n_embd": 8, "n_layer": 1, "n_head": 2,
                        "activation_function": "mish"})
