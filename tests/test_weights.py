"""The shard format: round trip, lazy per-block shards, corrupt and missing shards."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from gpt2web.engine import Engine, ShardAssembler
from gpt2web.host.convert import load_hf_checkpoint
from gpt2web.tokenizer import default_tokenizer
from gpt2web.weights import (ShardError, WeightsError, parse_manifest, quantize_int8, read_model_dir,
                             write_model)


def test_fp32_round_trip_is_exact(tiny_checkpoint, tmp_path):
    cfg, tensors = load_hf_checkpoint(tiny_checkpoint)
    write_model(tmp_path, cfg.to_dict(), tensors, dtype="float32")
    manifest, back = read_model_dir(tmp_path)
    assert set(back) == set(tensors)
    for name, arr in tensors.items():
        np.testing.assert_array_equal(back[name], arr, err_msg=name)
    # One shard per loading step: embeddings, each block, final norm.
    assert [s["group"] for s in manifest["shards"]] == ["embeddings", "h.0", "h.1", "ln_f"]
    for s in manifest["shards"]:
        assert s["sha256"][:16] in s["file"]  # content-addressed names


def test_loading_is_a_view_not_a_copy(tiny_model_dir):
    manifest, _ = read_model_dir(tiny_model_dir)
    data = bytearray((tiny_model_dir / manifest["shards"][1]["file"]).read_bytes())
    asm = ShardAssembler(manifest, default_tokenizer())
    asm.add(1, data)
    w = asm.tensors["h.0.attn.c_attn.w"]
    assert np.shares_memory(w, np.frombuffer(data, dtype=np.uint8))


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_quantized_round_trip_is_close(tiny_checkpoint, tmp_path, dtype):
    cfg, tensors = load_hf_checkpoint(tiny_checkpoint)
    write_model(tmp_path, cfg.to_dict(), tensors, dtype=dtype)
    _, back = read_model_dir(tmp_path)
    for name, arr in tensors.items():
        got = back[name].dequantize() if hasattr(back[name], "dequantize") else np.asarray(back[name], np.float32)
        tol = 1e-3 if dtype == "float16" else np.abs(arr).max() / 127 * 0.51
        assert np.abs(got - arr).max() <= tol + 1e-7, name


def test_int8_per_row_and_per_group_bound_the_error():
    w = np.random.default_rng(0).standard_normal((33, 128)).astype(np.float32)
    for group in (0, 32):
        qt = quantize_int8(w, group)
        err = np.abs(qt.dequantize() - w)
        if group:
            bound = np.abs(w.reshape(33, 4, 32)).max(axis=2).repeat(32, axis=1) / 127 / 2
        else:
            bound = np.abs(w).max(axis=1, keepdims=True) / 127 / 2
        assert (err <= bound + 1e-6).all()
    assert quantize_int8(np.zeros((2, 4))).dequantize().sum() == 0  # all-zero rows survive


def copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_corrupt_shard_is_named(tiny_model_dir, tmp_path):
    d = copy_model(tiny_model_dir, tmp_path / "m")
    manifest = json.loads((d / "manifest.json").read_text())
    bad = d / manifest["shards"][2]["file"]
    data = bytearray(bad.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=manifest["shards"][2]["file"] + ".*corrupt"):
        Engine.load(d)


def test_truncated_and_missing_shards_are_named(tiny_model_dir, tmp_path):
    d = copy_model(tiny_model_dir, tmp_path / "m")
    manifest = json.loads((d / "manifest.json").read_text())
    first = d / manifest["shards"][0]["file"]
    first.write_bytes(first.read_bytes()[:-10])
    with pytest.raises(ShardError, match=manifest["shards"][0]["file"] + ".*bytes"):
        Engine.load(d)
    first.unlink()
    with pytest.raises(ShardError, match=manifest["shards"][0]["file"] + ".*missing"):
        Engine.load(d)


def test_bad_manifests_are_explained(tmp_path):
    with pytest.raises(WeightsError, match="no model"):
        read_model_dir(tmp_path)
    with pytest.raises(WeightsError, match="not valid JSON"):
        parse_manifest(b"{oops")
    with pytest.raises(WeightsError, match="not a gpt2web manifest"):
        parse_manifest({"format": "other"})
    with pytest.raises(WeightsError, match="version 99"):
        parse_manifest({"format": "gpt2web-shards", "version": 99})


def test_assembler_builds_the_same_model_shard_by_shard(tiny_model_dir):
    manifest, _ = read_model_dir(tiny_model_dir)
    asm = ShardAssembler(json.dumps(manifest), default_tokenizer())
    for i in reversed(range(len(manifest["shards"]))):  # any order
        assert not asm.complete
        asm.add(i, (tiny_model_dir / manifest["shards"][i]["file"]).read_bytes())
    eng = asm.engine()
    ref = Engine.load(tiny_model_dir)
    np.testing.assert_array_equal(eng.logits([1, 2, 3]), ref.logits([1, 2, 3]))


def test_assembler_takes_a_digest_computed_by_the_host(tiny_model_dir):
    """The browser hashes shards with WebCrypto and passes the digest: it is compared with the
    manifest instead of hashing again, and a wrong one is refused, naming the shard."""
    import hashlib

    manifest, _ = read_model_dir(tiny_model_dir)
    asm = ShardAssembler(json.dumps(manifest), default_tokenizer())
    for i, info in enumerate(manifest["shards"]):
        data = (tiny_model_dir / info["file"]).read_bytes()
        asm.add(i, data, hashlib.sha256(data).hexdigest().upper())  # case does not matter
    np.testing.assert_array_equal(asm.engine().logits([1, 2, 3]), Engine.load(tiny_model_dir).logits([1, 2, 3]))
    info = manifest["shards"][0]
    data = (tiny_model_dir / info["file"]).read_bytes()
    with pytest.raises(ShardError, match=re.escape(info["file"]) + ".*is corrupt"):
        ShardAssembler(json.dumps(manifest), default_tokenizer()).add(0, data, "0" * 64)


def test_int8_is_stored_in_the_kernel_layout_and_loads_as_a_view(tiny_checkpoint, tmp_path):
    cfg, tensors = load_hf_checkpoint(tiny_checkpoint)
    manifest = write_model(tmp_path, cfg.to_dict(), tensors, dtype="int8")
    entry = manifest["tensors"]["h.0.mlp.c_fc.w"]
    assert entry["quant"]["layout"] == "rows4x16"
    data = (tmp_path / manifest["shards"][1]["file"]).read_bytes()
    asm = ShardAssembler(manifest, default_tokenizer())
    asm.add(1, data)
    qt = asm.tensors["h.0.mlp.c_fc.w"]
    assert qt.layout == "rows4x16" and np.shares_memory(qt.q, np.frombuffer(data, dtype=np.uint8))
    expected = quantize_int8(tensors["h.0.mlp.c_fc.w"])
    np.testing.assert_array_equal(qt.rows(), expected.q)
    np.testing.assert_array_equal(qt.dequantize(), expected.dequantize())
