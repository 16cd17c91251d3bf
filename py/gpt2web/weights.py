"""The shard format: a versioned manifest plus one shard file per loading step.

A model directory holds `manifest.json` and a handful of `.bin` shards. The browser fetches
them lazily, one block at a time: the embeddings first, then each transformer block, then
the final norm, so that progress can be shown and a block can be loaded while the next one
downloads. Shard names contain a hash of their bytes, so a server may let them be cached
forever; only the manifest must be revalidated.

Inside a shard, tensors are laid end to end, each starting at a multiple of 64 bytes, so that
NumPy can view them in place (`np.frombuffer`, no copy) whatever their dtype.

Matrices are stored as `[out, in]` (one row per output channel). That is the transpose of
the Hugging Face checkpoints (their `Conv1D` stores `[in, out]`), chosen because a
matrix-vector product over contiguous rows is the fast form both for NumPy without BLAS
(Pyodide) and for per-row int8 quantization.

Quantization (`int8`): symmetric, `w ~= q * scale`, with `q` in [-127, 127] and one float32
scale per output row (`group_size: 0`) or per group of `group_size` consecutive inputs of a row.
Biases and layer norms stay float32: they are tiny and sensitive.

int8 matrices whose rows are a multiple of 16 long are stored in the layout the WebAssembly
kernels stream (`layout: "rows4x16"`): every block of 4 rows interleaved in chunks of 16
inputs, so that a matrix-vector product reads the matrix as one sequential stream. Byte
q[o, i] sits at flat index (o//4)*4*in + (i//16)*64 + (o%4)*16 + i%16 for o < out & ~3; the
last out % 4 rows stay row-major. Loading is then a view, with no repacking.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

FORMAT = "gpt2web-shards"
MANIFEST_VERSION = 2  # 2: int8 matrices in the rows4x16 layout
ALIGN = 64
DTYPES = ("float32", "float16", "int8")
_NP_DTYPES = {"float32": np.float32, "float16": np.float16, "int8": np.int8}


class WeightsError(ValueError):
    """A model directory, manifest or shard is missing, malformed or corrupt."""


class ShardError(WeightsError):
    """One shard failed its size or hash check; `shard` names the file."""

    def __init__(self, shard: str, message: str):
        super().__init__(f"shard {shard}: {message}")
        self.shard = shard


# --------------------------------------------------------------------------- names


def block_tensor_names(i: int) -> list[str]:
    p = f"h.{i}."
    return [p + n for n in (
        "ln_1.g", "ln_1.b",
        "attn.c_attn.w", "attn.c_attn.b", "attn.c_proj.w", "attn.c_proj.b",
        "ln_2.g", "ln_2.b",
        "mlp.c_fc.w", "mlp.c_fc.b", "mlp.c_proj.w", "mlp.c_proj.b",
    )]


def shard_groups(n_layer: int) -> list[tuple[str, list[str]]]:
    """The loading order: (group name, tensor names) per shard."""
    groups = [("embeddings", ["wte", "wpe"])]
    groups += [(f"h.{i}", block_tensor_names(i)) for i in range(n_layer)]
    groups.append(("ln_f", ["ln_f.g", "ln_f.b"]))
    return groups


def is_matrix(name: str) -> bool:
    return name.endswith(".w") or name in ("wte", "wpe")


# --------------------------------------------------------------------------- quantization


ROWS = "rows"  # plain row-major [out, in]
ROWS4X16 = "rows4x16"  # 4 rows interleaved in chunks of 16 inputs (see above)
LAYOUTS = (ROWS, ROWS4X16)


def pack_rows4x16(q: np.ndarray) -> np.ndarray:
    """Row-major int8 [out, in] (in % 16 == 0) -> the same shape in the rows4x16 order."""
    out, n_in = q.shape
    if n_in % 16:
        raise ValueError(f"rows4x16 needs a row length divisible by 16, got {n_in}")
    n4 = out & ~3
    packed = np.array(q, dtype=np.int8, order="C", copy=True)
    blocks = q[:n4].reshape(n4 // 4, 4, n_in // 16, 16).transpose(0, 2, 1, 3)  # [block, chunk, row, 16]
    packed[:n4] = blocks.reshape(n4, n_in)
    return packed


def unpack_rows4x16(packed: np.ndarray) -> np.ndarray:
    """The inverse of pack_rows4x16."""
    out, n_in = packed.shape
    n4 = out & ~3
    q = np.array(packed, dtype=np.int8, order="C", copy=True)
    blocks = packed[:n4].reshape(n4 // 4, n_in // 16, 4, 16).transpose(0, 2, 1, 3)  # [block, row, chunk, 16]
    q[:n4] = blocks.reshape(n4, n_in)
    return q


@dataclass
class QuantTensor:
    """An int8 matrix `[out, in]` with float32 scales `[out]` or `[out, in // group_size]`.

    With layout rows4x16, `q` holds the [out, in] bytes in that order: do not index it by rows.
    """

    q: np.ndarray
    scale: np.ndarray
    group_size: int = 0  # 0: one scale per row
    layout: str = ROWS

    @property
    def shape(self) -> tuple[int, ...]:
        return self.q.shape

    def rows(self) -> np.ndarray:
        """q in plain row-major order (a copy when stored rows4x16)."""
        return unpack_rows4x16(self.q) if self.layout == ROWS4X16 else self.q

    def dequantize(self) -> np.ndarray:
        if self.layout != ROWS:
            return QuantTensor(self.rows(), self.scale, self.group_size).dequantize()
        out, n_in = self.q.shape
        if self.group_size:
            g = self.group_size
            w = self.q.reshape(out, n_in // g, g).astype(np.float32)
            w *= self.scale[:, :, None]
            return w.reshape(out, n_in)
        w = self.q.astype(np.float32)
        w *= self.scale[:, None]
        return w


def quantize_int8(w: np.ndarray, group_size: int = 0) -> QuantTensor:
    """Symmetric int8 quantization of a float matrix `[out, in]`, per row or per group."""
    w = np.asarray(w, dtype=np.float32)
    out, n_in = w.shape
    if group_size:
        if n_in % group_size:
            raise WeightsError(f"group size {group_size} does not divide the row length {n_in}")
        blocks = w.reshape(out, n_in // group_size, group_size)
        amax = np.abs(blocks).max(axis=2)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.rint(blocks / scale[:, :, None]), -127, 127).astype(np.int8)
        return QuantTensor(q.reshape(out, n_in), scale, group_size)
    amax = np.abs(w).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return QuantTensor(q, scale, 0)


# --------------------------------------------------------------------------- writing


def _pad(buf: bytearray) -> None:
    buf.extend(b"\0" * (-len(buf) % ALIGN))


def _append(buf: bytearray, arr: np.ndarray) -> dict:
    _pad(buf)
    arr = np.ascontiguousarray(arr)
    entry = {"offset": len(buf), "nbytes": arr.nbytes, "dtype": str(arr.dtype), "shape": list(arr.shape)}
    buf.extend(arr.tobytes())
    return entry


def write_model(
    out_dir: str | os.PathLike,
    config: Mapping,
    tensors: Mapping[str, np.ndarray],
    *,
    dtype: str = "int8",
    group_size: int = 0,
    name: str | None = None,
    tokenizer_file: str = "../gpt2.tiktoken",
    tokenizer_sha256: str | None = None,
    extra: Mapping | None = None,
) -> dict:
    """Write `tensors` (float32, our names, `[out, in]` matrices) as shards + manifest.json.

    Returns the manifest. Old shards in `out_dir` that the new manifest does not name are removed.
    """
    if dtype not in DTYPES:
        raise WeightsError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    from .tokenizer import GPT2_TIKTOKEN_SHA256

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_layer = int(config["n_layer"])
    manifest: dict = {
        "format": FORMAT,
        "version": MANIFEST_VERSION,
        "name": name or out.name,
        "dtype": dtype,
        "group_size": group_size if dtype == "int8" else 0,
        "config": dict(config),
        "tokenizer": {"file": tokenizer_file, "sha256": tokenizer_sha256 or GPT2_TIKTOKEN_SHA256},
        "shards": [],
        "tensors": {},
    }
    if extra:
        manifest.update(extra)
    written = set()
    for group, names in shard_groups(n_layer):
        buf = bytearray()
        for tname in names:
            if tname not in tensors:
                raise WeightsError(f"tensor {tname} is missing from the checkpoint")
            w = np.asarray(tensors[tname], dtype=np.float32)
            if dtype == "int8" and is_matrix(tname):
                qt = quantize_int8(w, group_size if w.shape[1] % max(group_size, 1) == 0 else 0)
                layout = ROWS4X16 if w.shape[1] % 16 == 0 else ROWS
                entry = _append(buf, pack_rows4x16(qt.q) if layout == ROWS4X16 else qt.q)
                entry["quant"] = {"scheme": "int8-symmetric", "group_size": qt.group_size,
                                  "layout": layout, "scale": _append(buf, qt.scale)}
            elif dtype == "float16" and is_matrix(tname):
                entry = _append(buf, w.astype(np.float16))
            else:
                entry = _append(buf, w)
            entry["shard"] = len(manifest["shards"])
            manifest["tensors"][tname] = entry
        data = bytes(buf)
        digest = hashlib.sha256(data).hexdigest()
        fname = f"{group}.{digest[:16]}.bin"
        (out / fname).write_bytes(data)
        written.add(fname)
        manifest["shards"].append({"file": fname, "group": group, "bytes": len(data), "sha256": digest})
    for old in out.glob("*.bin"):
        if old.name not in written:
            old.unlink()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


# --------------------------------------------------------------------------- reading


def parse_manifest(data: bytes | str | Mapping, source: str = "manifest.json") -> dict:
    """Parse and validate a manifest; errors name what is wrong."""
    if isinstance(data, Mapping):
        m = dict(data)
    else:
        try:
            m = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise WeightsError(f"{source} is not valid JSON ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise WeightsError(f"{source} is not a gpt2web manifest (format is not {FORMAT!r})")
    if m.get("version") != MANIFEST_VERSION:
        raise WeightsError(
            f"{source} has format version {m.get('version')}, this engine reads version "
            f"{MANIFEST_VERSION}: convert the model again with this version")
    for key in ("config", "shards", "tensors", "tokenizer"):
        if key not in m:
            raise WeightsError(f"{source} lacks the field {key!r}")
    for key in ("n_vocab", "n_ctx", "n_embd", "n_layer", "n_head"):
        if not isinstance(m["config"].get(key), int) or m["config"][key] <= 0:
            raise WeightsError(f"{source}: config.{key} must be a positive integer")
    # Every setting known and runnable, before any shard is fetched (the browser reads the
    # manifest first): a model this engine would run differently is refused here, by name.
    from .model import GPT2Config  # not at the top: model.py imports this module

    try:
        GPT2Config.from_dict(m["config"])
    except WeightsError as e:
        raise WeightsError(f"{source}: {e}") from None
    # Optional: what the model is (one line) and prompts that suit it, for the page.
    if "description" in m and not isinstance(m["description"], str):
        raise WeightsError(f"{source}: description must be text")
    if "examples" in m and (not isinstance(m["examples"], list)
                            or not all(isinstance(e, str) and e for e in m["examples"])):
        raise WeightsError(f"{source}: examples must be a list of non-empty prompts")
    return m


def verify_shard(info: Mapping, data, sha256: str | None = None) -> memoryview:
    """Check a shard's size and sha256; return a read-only memoryview of it.

    `sha256`: the digest of `data` if the caller has computed it already (the browser's worker
    hashes with WebCrypto, off its thread, several times faster than hashlib under Pyodide);
    None: it is computed here.
    """
    view = memoryview(data).cast("B")
    if view.nbytes != info["bytes"]:
        raise ShardError(info["file"], f"has {view.nbytes} bytes, the manifest says {info['bytes']} "
                         "(truncated or wrong file: download or convert the model again)")
    digest = hashlib.sha256(view).hexdigest() if sha256 is None else str(sha256).lower()
    if digest != info["sha256"]:
        raise ShardError(info["file"], f"is corrupt: sha256 {digest[:16]}..., the manifest says "
                         f"{info['sha256'][:16]}... (download or convert the model again)")
    return view


def _view(view: memoryview, entry: Mapping, shard: str) -> np.ndarray:
    dt = np.dtype(entry["dtype"])
    count = int(np.prod(entry["shape"], dtype=np.int64))
    end = entry["offset"] + count * dt.itemsize
    if end > view.nbytes or entry["nbytes"] != count * dt.itemsize:
        raise ShardError(shard, "a tensor lies outside the shard (manifest and shard disagree)")
    return np.frombuffer(view, dtype=dt, count=count, offset=entry["offset"]).reshape(entry["shape"])


def tensors_from_shard(manifest: Mapping, index: int, data,
                       sha256: str | None = None) -> dict[str, np.ndarray | QuantTensor]:
    """Verify shard `index` and return its tensors as views on `data` (no copy); `sha256` as
    in verify_shard."""
    info = manifest["shards"][index]
    view = verify_shard(info, data, sha256)
    out: dict[str, np.ndarray | QuantTensor] = {}
    for tname, entry in manifest["tensors"].items():
        if entry["shard"] != index:
            continue
        arr = _view(view, entry, info["file"])
        quant = entry.get("quant")
        if quant:
            layout = quant.get("layout", ROWS)
            if layout not in LAYOUTS:
                raise ShardError(info["file"], f"tensor {tname} has an unknown layout {layout!r}")
            out[tname] = QuantTensor(arr, _view(view, quant["scale"], info["file"]), quant["group_size"], layout)
        else:
            out[tname] = arr
    return out


def read_model_dir(path: str | os.PathLike,
                   on_shard: Callable[[int, dict], None] | None = None) -> tuple[dict, dict]:
    """Read a model directory from disk: (manifest, tensors by name)."""
    d = Path(path)
    mpath = d / "manifest.json"
    if not mpath.is_file():
        raise WeightsError(f"no model at {d}: {mpath} does not exist "
                           "(convert one with `gpt2web convert`, or pick a folder under weights/)")
    manifest = parse_manifest(mpath.read_bytes(), str(mpath))
    tensors: dict = {}
    for i, info in enumerate(manifest["shards"]):
        f = d / info["file"]
        if not f.is_file():
            raise ShardError(info["file"], f"is missing from {d}")
        tensors.update(tensors_from_shard(manifest, i, f.read_bytes()))
        if on_shard:
            on_shard(i, info)
    return manifest, tensors


def tokenizer_path(model_dir: str | os.PathLike, manifest: Mapping) -> Path:
    return (Path(model_dir) / manifest["tokenizer"]["file"]).resolve()
