"""GPT2.forward with every step in WebAssembly and no allocation per layer (browser only).

The same computation as `model.GPT2.forward` when its kernels are on: embedding, then per
layer  x += attn(ln_1(x)),  x += mlp(ln_2(x)),  then ln_f and the tied LM head, each step the
same kernel call the model would make. What differs is the bookkeeping around the calls. In
Pyodide, finding a NumPy array's address (`__array_interface__`) costs ~4-8 us and looking a
function up on the kernels' JS module ~5-10 us: with ~23 array arguments and 8 kernel calls per
layer that was ~2-3 ms of a ~13 ms decode step. Here every intermediate lives in one float32
arena allocated per number of tokens T and reused, its addresses and the weights' are worked
out once, and the kernel functions are looked up once.

`Runner.forward` is used by `GPT2.forward` when `Runner.supports(model)`: the kernels are
installed and every matrix of the blocks and the LM head is int8 in a layout they take. Every
setting of the config runs here: any MLP width (n_inner), the attention scale per layer, and an
MLP nonlinearity other than GPT-2's tanh GELU in NumPy, in place (GELU has the only kernel).
tests/test_kernels.py checks its probabilities against the NumPy reference in Chromium.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .kernels import KernelWeights, _ptr
from .model import gelu


KEEP_ARENA_T = 64  # an arena for up to this many tokens is kept for the next call


class _Arena:
    """The activations of one forward pass of T tokens, in one block of float32."""

    def __init__(self, T: int, C: int, F: int, n_ctx: int):
        sizes = {"x": T * C, "h": T * C, "qkv": 3 * T * C, "att": T * C, "fc": T * F, "y": T * C}  # F = d_mlp
        self.scores = np.zeros(n_ctx, dtype=np.float32)  # attention's scratch
        self.scores_ptr = _ptr(self.scores)
        self.block = np.zeros(sum(sizes.values()), dtype=np.float32)
        base, off = _ptr(self.block), 0
        self.arrays, self.ptrs = {}, {}
        for name, n in sizes.items():
            self.arrays[name] = self.block[off:off + n].reshape(T, n // T)
            self.ptrs[name] = base + 4 * off
            off += n


class Runner:
    """Runs one model's forward pass through the kernels (see the module's docstring)."""

    MATRICES = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")

    @staticmethod
    def supports(model) -> bool:
        if not (model.fast and kernels.available()):
            return False
        p = model.p
        mats = [p[f"h.{i}.{m}.w"] for i in range(model.config.n_layer) for m in Runner.MATRICES] + [p["wte"]]
        return all(isinstance(w, KernelWeights) and w.fits for w in mats)

    def __init__(self, model):
        self.model = model
        js = self.js = kernels._kernels()
        self.gemm, self.ln, self.attend, self.gelu = (js.gemm_int8, js.layer_norm_f32, js.attention_f32,
                                                      js.gelu_f32)
        c, p = model.config, model.p
        self.C, self.H, self.D, self.F = c.n_embd, c.n_head, c.n_embd // c.n_head, c.d_mlp
        self.eps = float(c.layer_norm_epsilon)
        self.n_ctx = c.n_ctx
        # The MLP's nonlinearity: the kernel for GPT-2's tanh GELU, else the model's NumPy
        # function, in place on the arena (the same function as CPython's, slower).
        self.act = None if model.act is gelu else model.act
        self.keep = []  # every array whose address is used below stays referenced here
        shapes = c.tensor_shapes()

        def check(name, a):  # the kernels read these by address: a wrong shape would read past them
            if tuple(a.shape) != shapes[name]:
                raise ValueError(f"{name} has shape {tuple(a.shape)}, the config implies {shapes[name]}")

        def vec(name):  # a float32 vector parameter and its address
            a = np.ascontiguousarray(p[name], dtype=np.float32)
            check(name, a)
            self.keep.append(a)
            return _ptr(a)

        def mat(name, bias):  # (weights args, bias address, n_out) for gemm_int8
            w = p[name]
            check(name, w.q)
            return (w._args, vec(bias) if bias else 0, w.q.shape[0])

        self.layers = []
        for i in range(c.n_layer):
            pre = f"h.{i}."
            self.layers.append({
                "scale": float(c.attn_scale(i)),  # as GPT2.attention
                "ln_1": (vec(pre + "ln_1.g"), vec(pre + "ln_1.b")),
                "ln_2": (vec(pre + "ln_2.g"), vec(pre + "ln_2.b")),
                **{m: mat(pre + m + ".w", pre + m + ".b") for m in self.MATRICES},
            })
        self.ln_f = (vec("ln_f.g"), vec("ln_f.b"))
        self.head = mat("wte", None)
        self.arena = None  # the arena of the last T used (only small ones are kept, see forward)

    def _arena(self, T: int) -> _Arena:
        if self.arena is None or self.arena.arrays["x"].shape[0] != T:
            self.arena = _Arena(T, self.C, self.F, self.n_ctx)
        return self.arena

    @staticmethod
    def _cache(cache) -> tuple[int, int, int]:
        """The cache's k and v addresses and bytes per layer, kept on the cache itself (so that
        the Runner holds no reference to a finished generation's cache)."""
        got = getattr(cache, "_addresses", None)
        if got is None:
            got = cache._addresses = (_ptr(cache.k), _ptr(cache.v), cache.k[0].nbytes)
        return got

    def forward(self, ids: np.ndarray, cache, rows: int) -> np.ndarray:
        """As GPT2.forward, after its checks: ids [T] int64 within the vocabulary, room in the
        cache, 1 <= rows <= T. Returns the logits of the last `rows` tokens, [rows, n_vocab]."""
        m, C, H, D, F = self.model, self.C, self.H, self.D, self.F
        T = ids.shape[0]
        a = self._arena(T)
        A, P = a.arrays, a.ptrs
        xq, xs = kernels._scratch.get(self.js, T, max(C, F))  # gemm_int8's, grown on demand, shared
        k0, v0, per_layer = self._cache(cache)
        start = cache.length
        n_ctx = cache.n_ctx
        np.add(kernels.take_rows(m.p["wte"], ids), m.p["wpe"][start:start + T], out=A["x"])
        gemm, ln, eps = self.gemm, self.ln, self.eps
        for i, L in enumerate(self.layers):
            ln(T, C, P["x"], *L["ln_1"], eps, P["h"])
            w, b, n = L["attn.c_attn"]
            gemm(T, C, n, P["h"], *w, b, P["qkv"], xq, xs)
            self.attend(T, start, H, D, n_ctx, L["scale"], P["qkv"], k0 + i * per_layer, v0 + i * per_layer,
                        P["att"], a.scores_ptr)
            w, b, n = L["attn.c_proj"]
            gemm(T, C, n, P["att"], *w, b, P["y"], xq, xs)
            np.add(A["x"], A["y"], out=A["x"])
            ln(T, C, P["x"], *L["ln_2"], eps, P["h"])
            w, b, n = L["mlp.c_fc"]
            gemm(T, C, n, P["h"], *w, b, P["fc"], xq, xs)
            if self.act is None:
                self.gelu(T * F, P["fc"], P["fc"])
            else:
                A["fc"][...] = self.act(A["fc"])
            w, b, n = L["mlp.c_proj"]
            gemm(T, F, n, P["fc"], *w, b, P["y"], xq, xs)
            np.add(A["x"], A["y"], out=A["x"])
        cache.length += T
        first = T - rows  # the last `rows` tokens' logits only
        ln(rows, C, P["x"] + 4 * first * C, *self.ln_f, eps, P["h"])
        w, _, n = self.head
        logits = np.empty((rows, n), dtype=np.float32)
        gemm(rows, C, n, P["h"], *w, 0, _ptr(logits), xq, xs)
        if T > KEEP_ARENA_T:  # a long prompt's buffers (~34 KB a token for GPT-2 small) go now
            self.arena = None
        return logits
