"""int8 matrix products: WebAssembly SIMD kernels in the browser, NumPy everywhere else.

    matmul_t_int8(x, w, bias=None, out=None)  ->  x @ w.T (+ bias)
        x float32 [T, in], w a QuantTensor (int8 [out, in] + float32 scales) -> float32 [T, out]

In the browser the worker calls `installKernels(pyodide)` (web/kernels/kernels.js), which
registers the JS module `gpt2web_kernels`: WebAssembly functions built from kernels/int8.c that
run on Pyodide's own memory. There a NumPy array's data address is a byte offset into that
memory, so the kernels read the weights and activations in place and write the result into a
NumPy array: no copy either way. Everything they touch must stay referenced from Python until
the call returns (a collected array's memory may be reused under the kernel's feet).

Precision: float32-exact. The kernel splits each token's activations into two int16 parts with
one per-token scale s, x ~= s * (hi + lo / 65534), which leaves at most ~2.3e-10 of the row's
largest |x| per element (below float32's own rounding); both parts are multiplied exactly in
int32 and summed in float32. The int8 weights are the same ones the NumPy reference uses, so
the product equals NumPy's float32 x @ w.T to float32 rounding: measured |y - y_ref| <= 3e-7 of
sum_i |x_i * w_i| (tests/test_kernels.py holds it to 1e-6), and the demo model's probabilities
within ~5e-7 of CPython's. (With hi alone, as before, they differed by up to 2e-5.) The second
part costs ~1.5x per product at T = 1 (see kernels/int8.c). The kernel's int16 scratch is
sized by the module itself (`scratch_bytes`).

Weight layouts (defined in `weights.py`). The shards store int8 matrices in `ROWS4X16` when
their rows are a multiple of 16 long, so that a decode step reads each matrix as one
sequential stream: measured ~1.5x faster than row by row and ~2.5x faster than 4 rows at a
time from the row-major layout. `prepare()` packs a row-major QuantTensor into it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from .weights import ROWS, ROWS4X16, QuantTensor, pack_rows4x16, unpack_rows4x16  # noqa: F401

IN_BROWSER = sys.platform == "emscripten"
JS_MODULE = "gpt2web_kernels"
ABI = 5  # the `abi` field kernels.js registers; bumped when an exported signature or the scratch size changes

_LAYOUT_CODE = {ROWS: 0, ROWS4X16: 1}

_js = None  # the registered JS module, once found


def _kernels():
    """The registered JS module of wasm functions, or None (CPython, or not installed yet)."""
    global _js
    if _js is None and IN_BROWSER:
        try:
            import gpt2web_kernels  # registered by web/kernels/kernels.js
        except ImportError:
            return None
        abi = getattr(gpt2web_kernels, "abi", None)
        if abi != ABI:  # a stale kernels.js next to a newer engine: run without the kernels
            print(f"gpt2web: web/kernels/kernels.js speaks kernel ABI {abi}, this engine expects {ABI}; "
                  "using NumPy float32 (reload the page to get matching files)", file=sys.stderr)
            return None
        _js = gpt2web_kernels
    return _js


def available() -> bool:
    """True when the WebAssembly kernels are installed (only ever in the browser)."""
    return _kernels() is not None


def _ptr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


# --------------------------------------------------------------------------- layouts


def layout_of(w: QuantTensor) -> str:
    return getattr(w, "layout", ROWS)


@dataclass
class KernelWeights(QuantTensor):
    """A QuantTensor made ready for the kernels by `prepare()`: contiguous, maybe packed.

    With layout ROWS4X16, `q` holds its [out, in] bytes in that order: do not index it by rows;
    use `take_rows`, `dequantize()` or `matmul_t_int8`. The data addresses are worked out once.
    """

    layout: str = ROWS

    def __post_init__(self):
        self.fits = supports(self)
        self._args = (_ptr(self.q), _ptr(self.scale), self.group_size, _LAYOUT_CODE[self.layout])
        self._bias_key = self._bias = self._bias_ptr = None

    def dequantize(self) -> np.ndarray:
        q = unpack_rows4x16(self.q) if self.layout == ROWS4X16 else self.q
        return QuantTensor(q, self.scale, self.group_size).dequantize()

    def bias_ptr(self, bias: np.ndarray) -> int:
        if bias is not self._bias_key:  # the model passes the same bias array every time
            self._bias_key = bias
            self._bias = _f32(bias)  # the same array when already float32 and contiguous
            self._bias_ptr = _ptr(self._bias)
        return self._bias_ptr


def take_rows(w: QuantTensor, ids) -> np.ndarray:
    """Rows `ids` of w, dequantized to float32 [len(ids), in] (the embedding lookup)."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if layout_of(w) == ROWS4X16:
        out, n_in = w.q.shape
        n4 = out & ~3
        q = np.empty((ids.shape[0], n_in), dtype=np.int8)
        blocked = ids < n4
        b = ids[blocked]
        chunks = w.q[:n4].reshape(n4 // 4, n_in // 16, 4, 16)
        q[blocked] = chunks[b // 4, :, b % 4, :].reshape(-1, n_in)
        q[~blocked] = w.q[ids[~blocked]]  # the last out % 4 rows are row-major
    else:
        q = w.q[ids]
    return QuantTensor(q, w.scale[ids], w.group_size).dequantize()


def check_quant(w: QuantTensor) -> None:
    """ValueError unless w's bytes and scales are shaped as the kernels will read them."""
    if w.q.ndim != 2 or w.q.dtype != np.int8:
        raise ValueError(f"an int8 matrix must be 2-D int8 [out, in], got {w.q.dtype} {w.q.shape}")
    n_out, n_in = w.q.shape
    g = w.group_size
    want = (n_out,) if g == 0 else (n_out, n_in // g) if g > 0 and n_in % g == 0 else None
    if want is None:
        raise ValueError(f"group size {g} does not divide the matrix's row length {n_in}")
    if tuple(w.scale.shape) != want:
        raise ValueError(f"the scales of a {n_out}x{n_in} int8 matrix (group size {g}) must have shape "
                         f"{want}, they have {tuple(w.scale.shape)}")


def supports(w: QuantTensor) -> bool:
    """Whether the kernel can multiply w: per-row scales, or groups of a multiple of 16 inputs."""
    n_in = w.q.shape[1]
    g = w.group_size
    if layout_of(w) == ROWS4X16 and n_in % 16:
        return False
    return g == 0 or (g % 16 == 0 and n_in % g == 0)


def prepare(w: QuantTensor) -> QuantTensor:
    """w in the form the kernels read fastest, when they are installed: ROWS4X16 if in % 16 == 0
    (packing copies the int8 bytes once, in wasm, ~10 ms per 100 MB; the row-major original
    can then be dropped), else contiguous row-major. Without the kernels, w unchanged."""
    js = _kernels()
    if js is None or isinstance(w, KernelWeights) or not supports(w):
        return w
    check_quant(w)
    q = np.ascontiguousarray(w.q, dtype=np.int8)
    scale = _f32(w.scale)
    if layout_of(w) == ROWS4X16 or q.shape[1] % 16:
        return KernelWeights(q, scale, w.group_size, layout_of(w))
    packed = np.empty_like(q)
    js.pack_rows4x16(_ptr(q), _ptr(packed), q.shape[0], q.shape[1])
    return KernelWeights(packed, scale, w.group_size, ROWS4X16)


# --------------------------------------------------------------------------- products


def matmul_t_int8_reference(x: np.ndarray, w: QuantTensor, bias: np.ndarray | None = None) -> np.ndarray:
    """x @ w.T (+ bias) in NumPy float32: the reference the kernels are tested against."""
    x = _f32(np.atleast_2d(x))
    q = unpack_rows4x16(w.q) if layout_of(w) == ROWS4X16 else w.q
    if w.group_size:
        y = x @ QuantTensor(q, w.scale, w.group_size).dequantize().T
    else:
        y = (x @ q.T.astype(np.float32)) * w.scale  # per-row scale: applied after the sum
    return y if bias is None else y + bias


class _Scratch:
    """The kernel's int16 activation buffer, reused across calls (grown on demand). Its size is
    what the module itself asks for (`scratch_bytes`), looked up once per shape."""

    def __init__(self):
        self.size = 0  # bytes of xq
        self.xq = np.zeros(0, dtype=np.int16)
        self.xs = np.zeros(0, dtype=np.float32)
        self.ptrs = (0, 0)
        self.need: dict[tuple[int, int], int] = {}

    def get(self, js, T: int, n_in: int) -> tuple[int, int]:
        need = self.need.get((T, n_in))
        if need is None:
            need = self.need[(T, n_in)] = int(js.scratch_bytes(T, n_in))
        if need > self.size or T > self.xs.shape[0]:
            self.size = max(need, 2 * self.size, 8192)
            self.xq = np.zeros(self.size // 2, dtype=np.int16)
            self.xs = np.zeros(max(T, self.size // 64), dtype=np.float32)  # one scale per token
            self.ptrs = (_ptr(self.xq), _ptr(self.xs))
        return self.ptrs


_scratch = _Scratch()


def matmul_t_int8(x: np.ndarray, w: QuantTensor, bias: np.ndarray | None = None,
                  out: np.ndarray | None = None) -> np.ndarray:
    """x @ w.T (+ bias): float32 x [T, in] (or [in]), int8 w [out, in] -> float32 [T, out].

    Uses the WebAssembly kernel when installed, else the NumPy reference. `out`, if given, must
    be a C-contiguous float32 array of shape [T, out] and receives the result. Shapes are checked
    on both paths (the kernel reads by address: a wrong one would read or write past an array).
    """
    check_quant(w)
    n_out, n_in_w = w.q.shape
    if np.ndim(x) not in (1, 2) or np.shape(x)[-1] != n_in_w:
        raise ValueError(f"x must be [T, {n_in_w}] or [{n_in_w}] for a {n_out}x{n_in_w} matrix, "
                         f"it has shape {np.shape(x)}")
    if bias is not None and np.shape(bias) != (n_out,):
        raise ValueError(f"the bias must have shape ({n_out},), it has {np.shape(bias)}")
    js = _js or _kernels()
    if js is None or not (w.fits if isinstance(w, KernelWeights) else supports(w)):
        y = matmul_t_int8_reference(x, w, bias)
        if out is None:
            return y
        out[...] = y
        return out
    w = w if isinstance(w, KernelWeights) else KernelWeights(
        np.ascontiguousarray(w.q, dtype=np.int8), _f32(w.scale), w.group_size, layout_of(w))
    x = _f32(x)
    if x.ndim == 1:
        x = x[None, :]
    T, n_in = x.shape
    if out is None:
        out = np.empty((T, n_out), dtype=np.float32)
    elif out.shape != (T, n_out) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(T, n_out)}")
    xq, xs = _scratch.get(js, T, n_in)
    # x, w, the bias, out and the scratch all stay referenced until the call returns.
    js.gemm_int8(T, n_in, n_out, _ptr(x), *w._args, 0 if bias is None else w.bias_ptr(bias),
                 _ptr(out), xq, xs)
    return out


# --------------------------------------------------------------------------- float32 kernels
#
# The rest of a step (kernels/f32.c), for the model to call instead of its NumPy functions
# when `available()`: each mirrors one of model.py operation by operation and equals it to
# float32 rounding (tests/test_kernels.py). One call replaces ~9 NumPy calls (layer norm) or
# ~15 plus the Python around them (attention).


def _need():
    js = _js or _kernels()
    if js is None:
        raise RuntimeError("the WebAssembly kernels are not installed")
    return js


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """model.layer_norm over the last axis of x [T, C] -> a new float32 [T, C]."""
    js = _need()
    x, g, b = _f32(x), _f32(g), _f32(b)
    if x.ndim not in (1, 2) or x.shape[-1] == 0:
        raise ValueError(f"layer norm takes x of shape [T, C] or [C] with C > 0, got {x.shape}")
    C = x.shape[-1]
    if g.shape != (C,) or b.shape != (C,):
        raise ValueError(f"layer norm over {C} features needs g and b of shape ({C},)")
    y = np.empty_like(x)
    js.layer_norm_f32(x.size // C if C else 0, C, _ptr(x), _ptr(g), _ptr(b), float(eps), _ptr(y))
    return y


def gelu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """model.gelu, elementwise; `out` may be x itself (a C-contiguous float32 array)."""
    js = _need()
    x = _f32(x)
    if out is None:
        out = np.empty_like(x)
    elif out.shape != x.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous float32 array shaped like x")
    js.gelu_f32(x.size, _ptr(x), _ptr(out))
    return out


class _Floats:
    """A float32 scratch buffer kept alive between calls, grown on demand."""

    def __init__(self):
        self.a = np.zeros(0, dtype=np.float32)

    def get(self, n: int) -> np.ndarray:
        if self.a.shape[0] < n:
            self.a = np.zeros(max(n, 2 * self.a.shape[0], 1024), dtype=np.float32)
        return self.a


_scores = _Floats()


def attention(qkv: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, start: int,
              scale: float) -> np.ndarray:
    """Causal self-attention of T new tokens over one layer's KV cache (GPT2.attention between
    its two matrix products).

    qkv [T, 3C] (q | k | v, heads side by side); k_cache, v_cache [H, n_ctx, D], C-contiguous
    float32, positions < start filled. Writes the new keys and values at start .. start+T-1 and
    returns softmax(q k^T * scale, causal) v as float32 [T, C].
    """
    js = _need()
    qkv = _f32(qkv)
    if qkv.ndim != 2 or qkv.shape[0] == 0 or k_cache.ndim != 3:
        raise ValueError(f"attention takes qkv [T, 3C] with T > 0 and a cache [H, n_ctx, D], got "
                         f"{qkv.shape} and {k_cache.shape}")
    if not np.isfinite(scale):
        raise ValueError(f"the attention scale must be a finite number, got {scale!r}")
    T = qkv.shape[0]
    H, n_ctx, D = k_cache.shape
    C = H * D
    for c in (k_cache, v_cache):
        if c.shape != (H, n_ctx, D) or c.dtype != np.float32 or not c.flags.c_contiguous:
            raise ValueError("the caches must be C-contiguous float32 [H, n_ctx, D]")
    if qkv.shape != (T, 3 * C):
        raise ValueError(f"qkv must have shape (T, {3 * C}), it has {qkv.shape}")
    if start < 0 or start + T > n_ctx:
        raise ValueError(f"{T} tokens after {start} do not fit {n_ctx} positions")
    out = np.empty((T, C), dtype=np.float32)
    scores = _scores.get(n_ctx)
    js.attention_f32(T, start, H, D, n_ctx, float(scale), _ptr(qkv), _ptr(k_cache), _ptr(v_cache),
                     _ptr(out), _ptr(scores))
    return out


_max_out = np.zeros(1, dtype=np.float32)  # softmax_z_f32 writes the max here
_max_out_ptr = _ptr(_max_out)


def softmax_z(logits: np.ndarray) -> tuple[float, float]:
    """(m, z) for the softmax of a float32 vector: m = max(logits), z = sum(exp(logits - m)),
    z summed in float64 (the kernel's exp is float32's, within a few ulp)."""
    js = _need()
    x = _f32(logits).reshape(-1)
    if x.shape[0] == 0:
        raise ValueError("softmax over no logits")
    z = float(js.softmax_z_f32(x.shape[0], _ptr(x), _max_out_ptr))
    return float(_max_out[0]), z


class _TopK:
    """topk_f32's output buffers, kept alive and grown on demand."""

    def __init__(self):
        self.k = 0

    def get(self, k: int) -> tuple[np.ndarray, int, int]:
        if k > self.k:
            self.k = max(k, 64)
            self.ids = np.zeros(self.k, dtype=np.int32)
            self.vals = np.zeros(self.k, dtype=np.float32)
            self.ptrs = (_ptr(self.ids), _ptr(self.vals))
        return self.ids, *self.ptrs


_topk = _TopK()


def topk(x: np.ndarray, k: int) -> np.ndarray | None:
    """Ids of the k largest of a float32 vector, largest first, ties by lower id (as
    sampling.ranked), or None when fewer than k of them are not NaN."""
    js = _need()
    x = _f32(x).reshape(-1)
    if isinstance(k, bool) or int(k) != k or k < 1 or x.shape[0] == 0:
        raise ValueError(f"top-k needs k >= 1 and at least one value, got k={k!r} of {x.shape[0]}")
    k = min(int(k), x.shape[0])
    ids, ids_ptr, vals_ptr = _topk.get(k)
    found = int(js.topk_f32(x.shape[0], _ptr(x), k, ids_ptr, vals_ptr))
    return ids[:k].astype(np.int64) if found == k else None
