"""Shared fixtures: checkpoints the tests build themselves (no model hub here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "py"))

TINY = dict(n_embd=64, n_layer=2, n_head=4, n_positions=512)


def randomize_every_tensor(model, seed: int) -> None:
    """Every parameter of a transformers GPT-2 random, from a fixed seed, so that no part of the
    network can be dropped or swapped without changing the logits: biases ~ N(0, 0.1), layer-norm
    gains ~ 1 + N(0, 0.2) (default initialisation makes them exactly 0 and 1), matrices
    ~ N(0, 1 / fan_in), embeddings ~ N(0, 0.4). At these scales the next-token distribution is
    neither flat nor one-hot (top probabilities ~0.03-0.8 on the tiny shape), so a relative
    tolerance on probabilities means something."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # lm_head.weight is wte (tied): listed once
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith(("wte.weight", "wpe.weight")):
                p.copy_(0.4 * r)
            elif p.ndim == 2:  # Conv1D weights are [in, out]
                p.copy_(r / p.shape[0] ** 0.5)
            elif ".ln_" in name and name.endswith(".weight"):
                p.copy_(1 + 0.2 * r)
            else:  # every bias, layer norms' included
                p.copy_(0.1 * r)


def build_hf_checkpoint(path: Path, seed: int = 0, every_tensor_random: bool = True, **shape) -> Path:
    """A random GPT-2 (real 50,257-token vocabulary) saved as a Hugging Face folder.

    `shape` may hold any GPT2Config field. Every tensor is drawn at random
    (`randomize_every_tensor`): with default initialisation every bias is 0 and every
    layer-norm gain 1, so a parity test could not see a dropped bias or a gain and bias
    swapped (`every_tensor_random=False` gives that initialisation)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50257, **shape))
    if every_tensor_random:
        randomize_every_tensor(model, seed)
    model.eval()
    model.save_pretrained(path, safe_serialization=True)
    return path


def torch_model_from(model):
    """A transformers GPT2LMHeadModel holding a gpt2web model's float32 weights (int8 ones as
    the engine dequantizes them): PyTorch's forward pass over the same numbers, the reference
    for models that exist only as gpt2web shards (the shipped demo)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    c, p = model.config, model.p
    hf = GPT2LMHeadModel(GPT2Config(
        vocab_size=c.n_vocab, n_positions=c.n_ctx, n_embd=c.n_embd, n_layer=c.n_layer, n_head=c.n_head,
        n_inner=c.d_mlp, activation_function=c.activation, layer_norm_epsilon=c.layer_norm_epsilon,
        scale_attn_weights=c.scale_attn_weights, scale_attn_by_inverse_layer_idx=c.scale_attn_by_inverse_layer_idx))
    f32 = lambda name: torch.from_numpy(np.array(  # noqa: E731
        p[name].dequantize() if hasattr(p[name], "dequantize") else p[name], dtype=np.float32))
    state = {"transformer.wte.weight": f32("wte"), "transformer.wpe.weight": f32("wpe"),
             "transformer.ln_f.weight": f32("ln_f.g"), "transformer.ln_f.bias": f32("ln_f.b")}
    for i in range(c.n_layer):
        for ours, theirs in (("ln_1.g", "ln_1.weight"), ("ln_1.b", "ln_1.bias"), ("ln_2.g", "ln_2.weight"),
                             ("ln_2.b", "ln_2.bias"), ("attn.c_attn.b", "attn.c_attn.bias"),
                             ("attn.c_proj.b", "attn.c_proj.bias"), ("mlp.c_fc.b", "mlp.c_fc.bias"),
                             ("mlp.c_proj.b", "mlp.c_proj.bias")):
            state[f"transformer.h.{i}.{theirs}"] = f32(f"h.{i}.{ours}")
        for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):  # Conv1D: [in, out]
            state[f"transformer.h.{i}.{m}.weight"] = f32(f"h.{i}.{m}.w").T.contiguous()
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and all(k == "lm_head.weight" or k.endswith(".attn.bias") for k in missing), missing
    hf.tie_weights()
    hf.eval()
    return hf


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_hf_checkpoint(tmp_path_factory.mktemp("tiny-hf"), seed=0, **TINY)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_checkpoint, tmp_path_factory) -> Path:
    from gpt2web.host.convert import convert

    out = tmp_path_factory.mktemp("weights") / "tiny"
    convert(str(tiny_checkpoint), out, dtype="float32", report=False, log=lambda m: None)
    return out


# ---------------------------------------------------------------- browser tests (real server)
# Shared by test_browser.py and test_widget.py: one build, one server, one Chromium per session.

REPO = ROOT
from gpt2web.host.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


@pytest.fixture(scope="session")
def web_build():
    """The runtime and the engine wheel, as the server will serve them."""
    sys.path.insert(0, str(REPO / "scripts"))
    from build_wheel import build_wheel
    from setup_runtime import ensure_runtime

    ensure_runtime(REPO / "web" / "runtime", quiet=True)
    build_wheel(REPO / "web" / "wheels", quiet=True)
    return REPO / "web"


def _copy_model(weights: Path, src: str, name: str) -> Path:
    dst = weights / name
    shutil.copytree(weights / src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["name"] = name
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return dst


@pytest.fixture(scope="session")
def weights_dir(tiny_checkpoint, tmp_path_factory) -> Path:
    """demo: the tiny model (fp32); int8: the same, quantized; corrupt: demo with one byte of a
    shard changed; missing: demo with one shard gone; shipped: the real weights/demo."""
    from gpt2web.host.convert import load_hf_checkpoint
    from gpt2web.weights import write_model

    weights = tmp_path_factory.mktemp("browser-weights")
    shutil.copy(REPO / "weights" / "gpt2.tiktoken", weights / "gpt2.tiktoken")
    config, tensors = load_hf_checkpoint(tiny_checkpoint)
    write_model(weights / "demo", config.to_dict(), tensors, dtype="float32", name="demo")
    write_model(weights / "int8", config.to_dict(), tensors, dtype="int8", name="int8")

    corrupt = _copy_model(weights, "demo", "corrupt")
    (shard,) = corrupt.glob("h.0.*.bin")
    data = bytearray(shard.read_bytes())
    data[1000] ^= 0xFF  # same size, other bytes: only the sha256 check can notice
    shard.write_bytes(bytes(data))

    missing = _copy_model(weights, "demo", "missing")
    (gone,) = missing.glob("h.1.*.bin")
    gone.unlink()

    # The trained model the project ships (weights/demo), as the page serves it by default.
    shutil.copytree(REPO / "weights" / "demo", weights / "shipped")
    return weights


@pytest.fixture(scope="session")
def engine(weights_dir):
    """The CPython engine on the same model: the oracle for what the page shows."""
    from gpt2web.engine import Engine

    return Engine.load(weights_dir / "demo")


@pytest.fixture(scope="session")
def server(web_build, weights_dir):
    """The real server (uvicorn) on a free port, serving web/ and the temp weights."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "py"), os.environ.get("PYTHONPATH", "")]))
    code = ("import sys; from gpt2web.host.server import serve; "
            "serve(sys.argv[1], port=0, weights_dir=sys.argv[2])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(REPO), str(weights_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("Serving gpt2web at http://127.0.0.1:"), line + proc.stdout.read()
        # Keep draining its output so a chatty server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        yield line.rsplit(" ", 1)[1]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches Debian's Chromium (never a downloaded build)."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}
