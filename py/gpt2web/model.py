"""GPT-2 forward pass in NumPy float32, with a KV cache.

The same code runs under CPython and under Pyodide. Each step of the network is a small
function named after the math; shapes are noted where they change. `T` is the number of new
tokens in a call, `L` the number of positions in the cache after it, `C` = n_embd, `H` heads of
`D` = C / H dimensions each.

Weights come as a dict shaped like the manifest (`h.3.attn.c_attn.w`, ...), matrices `[out, in]`.
A matrix is either float32 or, in int8 mode, a `QuantTensor` multiplied by the int8 kernels
(`kernels.py`: WebAssembly SIMD in the browser, NumPy elsewhere). When the WebAssembly kernels
are installed, layer norm, GELU and the attention core also run there (`self.fast`); the NumPy
functions below stay the reference they are tested against.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, asdict
from typing import Mapping

import numpy as np

from . import kernels
from .kernels import matmul_t_int8, take_rows
from .weights import QuantTensor, WeightsError, block_tensor_names

IN_BROWSER = sys.platform == "emscripten"


class ContextFullError(ValueError):
    """More tokens than the model's context window (n_ctx) can hold."""


@dataclass(frozen=True)
class GPT2Config:
    n_vocab: int = 50257
    n_ctx: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    layer_norm_epsilon: float = 1e-5

    @classmethod
    def from_dict(cls, d: Mapping) -> "GPT2Config":
        cfg = cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        if cfg.n_embd % cfg.n_head:
            raise WeightsError(f"n_embd {cfg.n_embd} is not a multiple of n_head {cfg.n_head}")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- the math


def gelu(x: np.ndarray) -> np.ndarray:
    # GPT-2 uses the tanh approximation of GELU: 0.5 x (1 + tanh(z)), z = sqrt(2/pi) (x + 0.044715 x^3).
    # Since 1 + tanh(z) = 2 sigmoid(2z), that is x / (1 + exp(-2z)): the same function with one
    # exp instead of tanh, measured ~1.6x faster in Pyodide. (x * x * x, not x**3: pow is slow there.)
    # For very negative x, exp overflows to inf and the result is the right limit, -0.
    z2 = np.float32(-2.0 * math.sqrt(2.0 / math.pi)) * (x + np.float32(0.044715) * (x * x * x))
    with np.errstate(over="ignore"):
        return x / (np.float32(1.0) + np.exp(z2))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + np.float32(eps)) * g + b


def matmul_t(x: np.ndarray, w: np.ndarray | QuantTensor) -> np.ndarray:
    """x @ w.T for x [T, in] and w [out, in] -> [T, out].

    int8 w goes to the int8 kernels. For float32 w: with BLAS (CPython) the transposed matmul is
    fastest. Pyodide's NumPy has no BLAS and its generic matmul is 5-15x slower than einsum over
    contiguous rows, so we use einsum there.
    """
    if isinstance(w, QuantTensor):
        return matmul_t_int8(x, w)
    if IN_BROWSER:
        if x.shape[0] == 1:
            return np.einsum("ij,j->i", w, x[0])[None, :]
        return np.einsum("ij,tj->ti", w, x)
    return x @ w.T


def linear(x: np.ndarray, w: np.ndarray | QuantTensor, b: np.ndarray) -> np.ndarray:
    if isinstance(w, QuantTensor):
        return matmul_t_int8(x, w, bias=b)  # [T, in] -> [T, out], the bias add fused
    return matmul_t(x, w) + b  # [T, in] -> [T, out]


def embed(wte: np.ndarray | QuantTensor, ids: np.ndarray) -> np.ndarray:
    """Rows `ids` of the token embedding: [T] -> [T, C] (only those rows are dequantized)."""
    return take_rows(wte, ids) if isinstance(wte, QuantTensor) else wte[ids]


# --------------------------------------------------------------------------- the cache


class KVCache:
    """Keys and values of every past position, per layer: [n_layer, H, n_ctx, D] each."""

    def __init__(self, config: GPT2Config):
        c = config
        d = c.n_embd // c.n_head
        # Positions >= length are never read, so the arrays need no zeroing (75 MB for GPT-2
        # small: zeroing cost ~2-70 ms per generation in the browser).
        self.k = np.empty((c.n_layer, c.n_head, c.n_ctx, d), dtype=np.float32)
        self.v = np.empty((c.n_layer, c.n_head, c.n_ctx, d), dtype=np.float32)
        self.length = 0
        self.n_ctx = c.n_ctx

    def reset(self) -> None:
        self.length = 0


# --------------------------------------------------------------------------- the model


def _as_f32(p) -> np.ndarray:
    if isinstance(p, QuantTensor):
        return p.dequantize()
    a = np.asarray(p)
    return a if a.dtype == np.float32 else a.astype(np.float32)


class GPT2:
    """A GPT-2 model ready to run. Build it with `GPT2(config, tensors)`.

    `tensors` maps manifest names to float32/float16 arrays or `QuantTensor`s. By default they
    are turned into float32 once, here (views stay views when already float32). With `int8`
    the int8 matrices stay int8 (4x less memory) and are multiplied by the int8 kernels; the
    position table `wpe`, which is only ever looked up, still becomes float32. `int8=None`
    (the default) means: int8 when the WebAssembly kernels are installed, i.e. in a browser
    whose worker called installKernels; float32 NumPy otherwise (CPython, the reference).
    `fast` (default: when the kernels are installed) runs layer norm, GELU and the attention
    core in WebAssembly too; `GPT2(..., int8=False, fast=False)` is the pure NumPy reference.
    """

    def __init__(self, config: GPT2Config, tensors: Mapping, int8: bool | None = None,
                 fast: bool | None = None):
        self.config = config
        missing = [n for n in self.tensor_names() if n not in tensors]
        if missing:
            raise WeightsError(f"the model lacks {len(missing)} tensors, e.g. {missing[0]}")
        self.int8 = kernels.available() if int8 is None else bool(int8)
        self.fast = kernels.available() if fast is None else bool(fast) and kernels.available()
        self._runner = None  # fast.Runner, made on the first forward() when it applies
        self.p = {n: self._param(n, tensors[n]) for n in self.tensor_names()}
        c = config
        expect = {"wte": (c.n_vocab, c.n_embd), "wpe": (c.n_ctx, c.n_embd)}
        for name, shape in expect.items():
            if self.p[name].shape != shape:
                raise WeightsError(f"{name} has shape {self.p[name].shape}, the config implies {shape}")

    def _param(self, name: str, t):
        if self.int8 and isinstance(t, QuantTensor) and name != "wpe" and kernels.supports(t):
            return kernels.prepare(t)  # kept int8, in the layout the kernels read fastest
        return _as_f32(t)

    @property
    def backend(self) -> str:
        """What multiplies the matrices: 'wasm-simd128-int8', 'numpy-int8' or 'numpy-float32'."""
        if any(isinstance(w, QuantTensor) for w in self.p.values()):
            return "wasm-simd128-int8" if kernels.available() else "numpy-int8"
        return "numpy-float32"

    def tensor_names(self) -> list[str]:
        names = ["wte", "wpe", "ln_f.g", "ln_f.b"]
        for i in range(self.config.n_layer):
            names += block_tensor_names(i)
        return names

    def new_cache(self) -> KVCache:
        return KVCache(self.config)

    def attention(self, x: np.ndarray, layer: int, cache: KVCache) -> np.ndarray:
        c, p = self.config, self.p
        pre = f"h.{layer}.attn."
        T = x.shape[0]
        H, D = c.n_head, c.n_embd // c.n_head
        start = cache.length
        L = start + T
        qkv = linear(x, p[pre + "c_attn.w"], p[pre + "c_attn.b"])  # [T, C] -> [T, 3C]
        scale = np.float32(1.0 / math.sqrt(D))
        if self.fast:  # the same steps in one WebAssembly call (kernels/f32.c)
            out = kernels.attention(qkv, cache.k[layer], cache.v[layer], start, scale)
            return linear(out, p[pre + "c_proj.w"], p[pre + "c_proj.b"])
        q, k, v = (qkv[:, i * c.n_embd:(i + 1) * c.n_embd].reshape(T, H, D).transpose(1, 0, 2)
                   for i in range(3))  # 3 x [H, T, D]
        cache.k[layer, :, start:L] = k
        cache.v[layer, :, start:L] = v
        K = cache.k[layer, :, :L]  # [H, L, D]
        V = cache.v[layer, :, :L]
        scores = (q @ K.transpose(0, 2, 1)) * scale  # [H, T, L]
        if T > 1:
            # Query t sits at position start + t and may not see positions after it.
            future = np.arange(L)[None, :] > (start + np.arange(T))[:, None]  # [T, L]
            scores = np.where(future[None], np.float32(-1e10), scores)
        att = softmax(scores)  # [H, T, L]
        out = (att @ V).transpose(1, 0, 2).reshape(T, c.n_embd)  # [H, T, D] -> [T, C]
        return linear(out, p[pre + "c_proj.w"], p[pre + "c_proj.b"])

    def mlp(self, x: np.ndarray, layer: int) -> np.ndarray:
        p = self.p
        pre = f"h.{layer}.mlp."
        h = linear(x, p[pre + "c_fc.w"], p[pre + "c_fc.b"])  # [T, C] -> [T, 4C]
        h = kernels.gelu(h, out=h) if self.fast else gelu(h)
        return linear(h, p[pre + "c_proj.w"], p[pre + "c_proj.b"])  # [T, 4C] -> [T, C]

    def block(self, x: np.ndarray, layer: int, cache: KVCache) -> np.ndarray:
        p, eps, ln = self.p, self.config.layer_norm_epsilon, self.layer_norm
        pre = f"h.{layer}."
        x = x + self.attention(ln(x, p[pre + "ln_1.g"], p[pre + "ln_1.b"], eps), layer, cache)
        x = x + self.mlp(ln(x, p[pre + "ln_2.g"], p[pre + "ln_2.b"], eps), layer)
        return x

    @property
    def layer_norm(self):
        return kernels.layer_norm if self.fast else layer_norm

    def forward(self, ids, cache: KVCache, all_logits: bool = False, last: int | None = None) -> np.ndarray:
        """Run new tokens `ids` after what `cache` holds; advance the cache.

        Returns the logits after the last token, [n_vocab], or for every new token, [T, n_vocab]
        (`all_logits`), or for the last `last` new tokens, [last, n_vocab] (the LM head is a third
        of the work: a sliding-window score needs only the rows it has not scored yet).
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        T = ids.shape[0]
        if T == 0:
            raise ValueError("forward() needs at least one token")
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= T):
            raise ValueError(f"last must be a whole number from 1 to {T}, got {last!r}")
        rows = T if all_logits else (last or 1)
        if cache.length + T > self.config.n_ctx:
            raise ContextFullError(
                f"the context window holds {self.config.n_ctx} tokens; {cache.length} are used and "
                f"{T} more do not fit")
        if ids.min() < 0 or ids.max() >= self.config.n_vocab:
            raise ValueError(f"token ids must lie in [0, {self.config.n_vocab})")
        if self.fast:
            if self._runner is None:
                from .fast import Runner
                self._runner = Runner(self) if Runner.supports(self) else False
            if self._runner:  # the same steps, with buffers and addresses set up once
                logits = self._runner.forward(ids, cache, rows)
                return logits if all_logits or last else logits[0]
        p, eps = self.p, self.config.layer_norm_epsilon
        x = embed(p["wte"], ids) + p["wpe"][cache.length:cache.length + T]  # [T, C]
        for layer in range(self.config.n_layer):
            x = self.block(x, layer, cache)
        cache.length += T
        x = self.layer_norm(x[T - rows:], p["ln_f.g"], p["ln_f.b"], eps)  # [rows, C]
        logits = matmul_t(x, p["wte"])  # tied LM head: [rows, C] -> [rows, n_vocab]
        return logits if all_logits or last else logits[0]
