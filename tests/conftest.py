"""Shared fixtures: checkpoints the tests build themselves (no model hub here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "py"))

TINY = dict(n_embd=64, n_layer=2, n_head=4, n_positions=512)


def build_hf_checkpoint(path: Path, seed: int = 0, **shape) -> Path:
    """A random GPT-2 (real 50,257-token vocabulary) saved as a Hugging Face folder."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50257, **shape))
    model.eval()
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_hf_checkpoint(tmp_path_factory.mktemp("tiny-hf"), seed=0, **TINY)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_checkpoint, tmp_path_factory) -> Path:
    from gpt2web.host.convert import convert

    out = tmp_path_factory.mktemp("weights") / "tiny"
    convert(str(tiny_checkpoint), out, dtype="float32", report=False, log=lambda m: None)
    return out
