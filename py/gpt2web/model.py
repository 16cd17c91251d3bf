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
    """Everything about a GPT-2 that changes its arithmetic (host/convert.py says, for every
    field of transformers' GPT2Config, which of these it maps to or why it has no effect)."""

    n_vocab: int = 50257
    n_ctx: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    layer_norm_epsilon: float = 1e-5
    n_inner: int | None = None  # the MLP's width; None: 4 * n_embd, GPT-2's
    activation: str = "gelu_new"  # the MLP's nonlinearity: a key of ACTIVATIONS
    scale_attn_weights: bool = True  # attention scores / sqrt(head size)
    scale_attn_by_inverse_layer_idx: bool = False  # ... and / (layer index + 1)

    @classmethod
    def from_dict(cls, d: Mapping) -> "GPT2Config":
        """A config from a manifest's `config`; a WeightsError names any setting this engine
        cannot run or does not know (a model from a newer converter must not run as something
        else)."""
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise WeightsError(f"the model's config sets {unknown[0]!r}, which this engine does not know "
                               f"(a newer gpt2web made it?): update gpt2web, or convert the model again")
        for key in ("n_vocab", "n_ctx", "n_embd", "n_layer", "n_head"):
            v = d.get(key, 1)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise WeightsError(f"config.{key} must be a positive whole number, got {v!r}")
        n_inner = d.get("n_inner")
        if n_inner is not None and (isinstance(n_inner, bool) or not isinstance(n_inner, int) or n_inner <= 0):
            raise WeightsError(f"config.n_inner (the MLP's width) must be a positive whole number, got {n_inner!r}")
        if d.get("activation", "gelu_new") not in ACTIVATIONS:
            raise WeightsError(f"config.activation {d['activation']!r} is not one this engine runs "
                               f"({', '.join(ACTIVATIONS)})")
        for key in ("scale_attn_weights", "scale_attn_by_inverse_layer_idx"):
            if not isinstance(d.get(key, False), bool):
                raise WeightsError(f"config.{key} must be true or false, got {d[key]!r}")
        eps = d.get("layer_norm_epsilon", 1e-5)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
            raise WeightsError(f"config.layer_norm_epsilon must be a small positive number, got {eps!r}")
        cfg = cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        if cfg.n_embd % cfg.n_head:
            raise WeightsError(f"n_embd {cfg.n_embd} is not a multiple of n_head {cfg.n_head}")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def d_mlp(self) -> int:
        """The MLP's inner width: n_inner, or 4 * n_embd (3,072 for GPT-2 small)."""
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    def attn_scale(self, layer: int) -> np.float32:
        """What attention multiplies q k^T by in block `layer` (as transformers' GPT2Attention)."""
        scale = 1.0 / math.sqrt(self.n_embd // self.n_head) if self.scale_attn_weights else 1.0
        if self.scale_attn_by_inverse_layer_idx:
            scale /= float(layer + 1)
        return np.float32(scale)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor's shape, by manifest name (matrices [out, in])."""
        C, F = self.n_embd, self.d_mlp
        shapes = {"wte": (self.n_vocab, C), "wpe": (self.n_ctx, C), "ln_f.g": (C,), "ln_f.b": (C,)}
        for i in range(self.n_layer):
            p = f"h.{i}."
            shapes.update({p + "ln_1.g": (C,), p + "ln_1.b": (C,), p + "ln_2.g": (C,), p + "ln_2.b": (C,),
                           p + "attn.c_attn.w": (3 * C, C), p + "attn.c_attn.b": (3 * C,),
                           p + "attn.c_proj.w": (C, C), p + "attn.c_proj.b": (C,),
                           p + "mlp.c_fc.w": (F, C), p + "mlp.c_fc.b": (F,),
                           p + "mlp.c_proj.w": (C, F), p + "mlp.c_proj.b": (C,)})
        return shapes


# --------------------------------------------------------------------------- the math


def gelu(x: np.ndarray) -> np.ndarray:
    # GPT-2 uses the tanh approximation of GELU: 0.5 x (1 + tanh(z)), z = sqrt(2/pi) (x + 0.044715 x^3).
    # Since 1 + tanh(z) = 2 sigmoid(2z), that is x / (1 + exp(-2z)): the same function with one
    # exp instead of tanh, measured ~1.6x faster in Pyodide. (x * x * x, not x**3: pow is slow there.)
    # For very negative x, exp overflows to inf and the result is the right limit, -0.
    z2 = np.float32(-2.0 * math.sqrt(2.0 / math.pi)) * (x + np.float32(0.044715) * (x * x * x))
    with np.errstate(over="ignore"):
        return x / (np.float32(1.0) + np.exp(z2))


def gelu_erf(x: np.ndarray) -> np.ndarray:
    """GELU as defined, x Phi(x) = x/2 erfc(-x / sqrt 2) (transformers' "gelu"). NumPy has no
    erf, so erfc is the Chebyshev fit of Numerical Recipes (erfcc, fractional error < 1.2e-7
    everywhere, below float32's rounding), in float64."""
    z = np.asarray(x, dtype=np.float64) * -math.sqrt(0.5)
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.5 * a)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc_a = t * np.exp(-a * a + poly)
    erfc = np.where(z >= 0, erfc_a, 2.0 - erfc_a)
    return (0.5 * np.asarray(x, dtype=np.float64) * erfc).astype(np.float32)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.float32(0))


def silu(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf for very negative x: the limit, -0
        return x / (np.float32(1.0) + np.exp(-x))


def quick_gelu(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return x / (np.float32(1.0) + np.exp(np.float32(-1.702) * x))


# The MLP's nonlinearity, by config.activation. The converter maps transformers' names onto
# these (gelu_new, gelu_pytorch_tanh, gelu_fast, ... are all the tanh form). Only "gelu_new" has
# a WebAssembly kernel; the others run in NumPy in the browser too (the same function, slower).
ACTIVATIONS = {"gelu_new": gelu, "gelu": gelu_erf, "relu": relu, "silu": silu, "quick_gelu": quick_gelu}


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
        for name, shape in config.tensor_shapes().items():
            if tuple(self.p[name].shape) != shape:
                why = " (is n_inner, the MLP's width, right?)" if ".mlp." in name else ""
                raise WeightsError(f"{name} has shape {tuple(self.p[name].shape)}, the config implies {shape}{why}")
        self.act = ACTIVATIONS[config.activation]

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
        scale = c.attn_scale(layer)
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
        h = linear(x, p[pre + "c_fc.w"], p[pre + "c_fc.b"])  # [T, C] -> [T, F] (F = d_mlp, 4C in GPT-2)
        h = kernels.gelu(h, out=h) if self.fast and self.act is gelu else self.act(h)
        return linear(h, p[pre + "c_proj.w"], p[pre + "c_proj.b"])  # [T, F] -> [T, C]

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
