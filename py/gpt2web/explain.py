"""Inside one step: attention weights, the logit lens, embedding neighbours, the sampling view.

Everything here is computed on request, for one step the reader picked, and never during
generation: a closed view costs nothing. The same code runs in CPython (the CLI, the tests)
and in Pyodide (the worker); the numbers shown in the browser are these.

`Trace` runs the model's forward pass over a whole context from scratch (no KV cache) with
the model's own parameters and its own layer norm, GELU and matrix products (int8 kernels in
the browser), and keeps the residual stream before every block. From it:

- `attention(layer)`: the softmax weights of every head, [H, T, T]: row i, column j is how
  much position i attends to position j (zero for j > i);
- `lens(pos)`: the final layer norm and the LM head applied to the residual stream after the
  embeddings and after each block, [n_layer + 1, n_vocab]; the last row is the model's logits.

The attention weights of one layer are recomputed from the stored residual stream when asked
for (one c_attn product), so changing layer or head costs no new pass.

`neighbors` ranks tokens by the cosine similarity of their rows of `wte` (the product of one
row with the whole table is the LM head's product). `embedding_map` projects a few rows on
their first two principal components. `sampling_view` lays out the sampling distribution of
one step's logits: before and after temperature, the top-k and top-p cut-offs, what is left
out, using `sampling.sampling_distribution` itself.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from .model import embed, linear, matmul_t, softmax
from .sampling import Sampler, SamplingParams, log_softmax, ranked, sampling_distribution

__all__ = ["Trace", "neighbors", "embedding_map", "sampling_view", "ExplainError"]


class ExplainError(ValueError):
    """A view was asked for something the model does not have (a layer, a head, a token)."""


def check_index(name: str, value, n: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
        raise ExplainError(f"{name} must be a whole number from 0 to {n - 1} (this model has {n} {what}), "
                           f"got {value!r}")
    return value


# --------------------------------------------------------------------------- the trace


class Trace:
    """One forward pass over `ids` (from position 0, no cache), residual stream kept per block."""

    def __init__(self, model, ids):
        c = model.config
        ids = [int(i) for i in ids]
        if not ids:
            raise ExplainError("there are no tokens to look inside")
        if len(ids) > c.n_ctx:
            raise ExplainError(f"{len(ids)} tokens do not fit the context window of {c.n_ctx}")
        if min(ids) < 0 or max(ids) >= c.n_vocab:
            raise ExplainError(f"token ids must lie in [0, {c.n_vocab})")
        self.model, self.ids = model, ids
        p, T = model.p, len(ids)
        x = embed(p["wte"], np.asarray(ids, dtype=np.int64)) + p["wpe"][:T]  # [T, C]
        self.resid = [x]  # resid[k]: the residual stream after k blocks, [T, C]
        for layer in range(c.n_layer):
            att, v = self._weights(x, layer)
            out = (att @ v).transpose(1, 0, 2).reshape(T, c.n_embd)  # [H, T, D] -> [T, C]
            pre = f"h.{layer}.attn."
            x = x + linear(out, p[pre + "c_proj.w"], p[pre + "c_proj.b"])
            x = x + model.mlp(model.layer_norm(x, p[f"h.{layer}.ln_2.g"], p[f"h.{layer}.ln_2.b"],
                                               c.layer_norm_epsilon), layer)
            self.resid.append(x)
        self._lens = {}

    def _weights(self, x: np.ndarray, layer: int):
        """The attention weights [H, T, T] of block `layer` on its input x, and its values [H, T, D]."""
        m = self.model
        c, p = m.config, m.p
        T = x.shape[0]
        H, D = c.n_head, c.n_embd // c.n_head
        h = m.layer_norm(x, p[f"h.{layer}.ln_1.g"], p[f"h.{layer}.ln_1.b"], c.layer_norm_epsilon)
        qkv = linear(h, p[f"h.{layer}.attn.c_attn.w"], p[f"h.{layer}.attn.c_attn.b"])  # [T, 3C]
        q, k, v = (np.ascontiguousarray(qkv[:, i * c.n_embd:(i + 1) * c.n_embd].reshape(T, H, D).transpose(1, 0, 2))
                   for i in range(3))  # 3 x [H, T, D]
        scores = (q @ k.transpose(0, 2, 1)) * c.attn_scale(layer)  # [H, T, T], as GPT2.attention
        future = np.arange(T)[None, :] > np.arange(T)[:, None]
        scores = np.where(future[None], np.float32(-np.inf), scores)
        return softmax(scores), v

    @property
    def n_layer(self) -> int:
        return self.model.config.n_layer

    def attention(self, layer: int, head: int | None = None) -> np.ndarray:
        """[T, T] weights of one head, or their mean over the heads when head is None."""
        check_index("the layer", layer, self.n_layer, "layers")
        if head is not None:
            check_index("the head", head, self.model.config.n_head, "heads")
        att, _ = self._weights(self.resid[layer], layer)
        return att.mean(axis=0) if head is None else att[head]

    def lens(self, pos: int = -1) -> np.ndarray:
        """Logits [n_layer + 1, n_vocab] at position `pos` read after 0..n_layer blocks."""
        pos = range(len(self.ids))[pos]
        if pos not in self._lens:
            m = self.model
            p = m.p
            rows = np.stack([r[pos] for r in self.resid])  # [n_layer + 1, C]
            h = m.layer_norm(rows, p["ln_f.g"], p["ln_f.b"], m.config.layer_norm_epsilon)
            self._lens = {pos: matmul_t(h, p["wte"])}  # the tied LM head; only the latest is kept
        return self._lens[pos]

    def logits(self, pos: int = -1) -> np.ndarray:
        return self.lens(pos)[-1]


def top_probs(logits: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The n likeliest tokens under softmax(logits) (temperature 1), likeliest first."""
    lp = log_softmax(logits)
    return [(int(i), float(math.exp(lp[i]))) for i in ranked(logits, n)]


# --------------------------------------------------------------------------- embeddings


def _row_norms(model) -> np.ndarray:
    """The length of every row of wte, worked out once per model (in chunks: no float copy of
    the whole table)."""
    got = getattr(model, "_wte_norms", None)
    if got is None:
        wte, n = model.p["wte"], model.config.n_vocab
        got = np.empty(n, dtype=np.float64)
        for s in range(0, n, 4096):
            rows = embed(wte, np.arange(s, min(n, s + 4096), dtype=np.int64)).astype(np.float64)
            got[s:s + rows.shape[0]] = np.sqrt((rows * rows).sum(axis=1))
        model._wte_norms = got
    return got


def cosines(model, token_ids) -> np.ndarray:
    """Cosine similarity of the rows token_ids of wte with every row of wte, [k, n_vocab]
    float64: one product of k rows with the whole table (the LM head's product)."""
    for t in token_ids:
        check_index("the token id", t, model.config.n_vocab, "tokens")
    wte = model.p["wte"]
    ids = np.asarray(token_ids, dtype=np.int64)
    rows = embed(wte, ids).astype(np.float32)  # [k, C]
    dots = matmul_t(rows, wte).astype(np.float64)  # [k, n_vocab]
    norms = _row_norms(model)
    denom = norms[None, :] * norms[ids][:, None]
    return np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)


def neighbors(model, token_id: int, top: int) -> list[tuple[int, float]]:
    """The `top` tokens whose embedding rows point most nearly the same way, the token left out."""
    return neighbors_many(model, [token_id], top)[0]


def neighbors_many(model, token_ids, top: int) -> list[list[tuple[int, float]]]:
    out = []
    for t, cos in zip(token_ids, cosines(model, list(token_ids))):
        cos[t] = -np.inf
        out.append([(int(i), float(cos[i])) for i in ranked(cos, top)])
    return out


def embedding_map(model, token_ids, per_token: int = 5) -> dict:
    """2-D coordinates (PCA of the embedding rows) of `token_ids` and each one's neighbours.

    The principal components are those of the points shown (centred); each axis's sign is set
    so that its largest loading is positive, so the same tokens always give the same map.
    """
    seen, points = {}, []
    for t in token_ids:
        t = check_index("the token id", int(t), model.config.n_vocab, "tokens")
        if t not in seen:
            seen[t] = len(points)
            points.append({"id": t, "of": None, "cosine": 1.0})
    near = neighbors_many(model, list(seen), per_token) if per_token else [[] for _ in seen]
    for t, found in zip(list(seen), near):
        for n, cos in found:
            if n not in seen:
                seen[n] = len(points)
                points.append({"id": n, "of": t, "cosine": cos})
    rows = embed(model.p["wte"], np.asarray([q["id"] for q in points], dtype=np.int64)).astype(np.float64)
    xy, var = pca2(rows)
    for q, (x, y) in zip(points, xy):
        q["x"], q["y"] = float(x), float(y)
    return {"points": points, "explained": [float(v) for v in var]}


def pca2(rows: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Coordinates [n, 2] on the first two principal components, and the share of the variance
    each explains."""
    x = rows - rows.mean(axis=0)
    if x.shape[0] < 2 or not np.any(x):
        return np.zeros((x.shape[0], 2)), [0.0, 0.0]
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:2]
    for i in range(comps.shape[0]):
        if comps[i, np.argmax(np.abs(comps[i]))] < 0:
            comps[i] = -comps[i]
    xy = x @ comps.T
    if xy.shape[1] < 2:
        xy = np.hstack([xy, np.zeros((xy.shape[0], 1))])
    total = float((s * s).sum())
    var = [float(v * v) / total for v in s[:2]] + [0.0] * (2 - min(2, len(s)))
    return xy, var


# --------------------------------------------------------------------------- sampling


# Draw exactly as Generation.step does (a sampler that also takes the step's logits gets them).
_DRAW_TAKES_LOGITS = "logits" in inspect.signature(Sampler.draw).parameters

ORDER = ("divide the logits by the temperature", "keep the top-k tokens",
         "keep the smallest set whose probability reaches top-p", "rescale what is kept to sum to 1",
         "draw one token")


def sampling_view(logits: np.ndarray, params: SamplingParams, top: int = 30, samples: int = 0) -> dict:
    """How one step's logits become the sampling distribution, for the `top` likeliest tokens.

    Each row: the token's probability under the model (temperature 1), after temperature (all
    tokens, before any cut-off), and its share of the sampling distribution (0 when a cut-off
    leaves it out). `kept` is how many tokens can be drawn; `top_k_cut` / `top_p_cut` how many
    each cut-off leaves (null when it is off); the excluded masses are what the kept tokens do
    not cover, under the model and after temperature. `samples` draws that many tokens with
    the settings' seed and counts them.
    """
    params = SamplingParams(params.temperature, params.top_k, params.top_p, params.seed).validate()
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 1000:
        raise ExplainError(f"the number of rows must be from 1 to 1000, got {top!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or not 0 <= samples <= 10000:
        raise ExplainError(f"the number of samples must be from 0 to 10000, got {samples!r}")
    raw = np.asarray(logits)
    n_vocab = raw.shape[0]
    ids, probs = sampling_distribution(raw, params)
    model_p = np.exp(log_softmax(raw))
    t = params.temperature
    if t > 0:
        temp_p = np.exp(log_softmax(raw.astype(np.float64) / t))
    else:
        temp_p = np.zeros(n_vocab)
        temp_p[ids[0]] = 1.0
    share = dict(zip(ids.tolist(), probs.tolist()))
    order = ranked(raw, min(n_vocab, max(top, 1)))
    k_cut = min(params.top_k, n_vocab) if params.top_k and t > 0 else None
    p_cut = int(ids.shape[0]) if params.top_p < 1 and t > 0 else None
    rows = [{"rank": r + 1, "id": int(i), "prob": float(model_p[i]), "temp_prob": float(temp_p[i]),
             "sample_prob": float(share.get(int(i), 0.0)), "kept": int(i) in share}
            for r, i in enumerate(order.tolist())]
    out = {
        "temperature": t, "top_k": params.top_k, "top_p": params.top_p, "seed": params.seed,
        "n_vocab": n_vocab, "kept": int(ids.shape[0]), "top_k_cut": k_cut, "top_p_cut": p_cut,
        "excluded_mass": max(0.0, 1.0 - float(model_p[ids].sum())),
        "excluded_temp_mass": max(0.0, 1.0 - float(temp_p[ids].sum())),
        "shown_mass": float(sum(r["prob"] for r in rows)), "rows": rows, "order": list(ORDER),
    }
    if samples:
        if params.seed is None:
            raise ExplainError("sampling many times needs a seed, so that the same draws come out again")
        sampler = Sampler(params)
        counts: dict[int, int] = {}
        for _ in range(samples):
            # as a generation draws
            i = sampler.draw(ids, probs, raw) if _DRAW_TAKES_LOGITS else sampler.draw(ids, probs)
            counts[i] = counts.get(i, 0) + 1
        out["samples"] = samples
        out["counts"] = sorted(([int(i), c] for i, c in counts.items()), key=lambda ic: (-ic[1], ic[0]))
    return out


# --------------------------------------------------------------------------- the engine's jobs


class ExplainJobs:
    """The views' jobs on an Engine (mixed into engine.Engine): plain dicts, as the CLI prints
    them and the worker sends them."""

    def _text_ids(self, text: str) -> list[int]:
        return self.encode_prompt(text, reserve=0)

    def _tokens(self, ids) -> list[dict]:
        return [{"id": int(i), "token": self.label(int(i))} for i in ids]

    def token_id(self, token) -> int:
        """An id (int or digits), or a text that is exactly one token."""
        n = self.model.config.n_vocab
        if isinstance(token, str) and token.strip().isdigit() and token.strip() == token:
            token = int(token)
        if isinstance(token, int) and not isinstance(token, bool):
            return check_index("the token id", token, n, "tokens")
        if not isinstance(token, str) or token == "":
            raise ExplainError("give a token: an id, or a text that is one token")
        ids = self.tokenizer.encode(token)
        if len(ids) != 1:
            shown = " + ".join(repr(self.label(i)) for i in ids)
            raise ExplainError(f"{token!r} is {len(ids)} tokens ({shown}), not one: give one token or its id")
        return ids[0]

    def attention(self, text: str, layer: int, head: int | None = None) -> dict:
        """How much each position of `text` attends to each earlier one, in one layer (and head)."""
        ids = self._text_ids(text)
        trace = Trace(self.model, ids)
        w = trace.attention(layer, head)
        return {"tokens": self._tokens(ids), "layer": layer, "head": head,
                "weights": [[float(v) for v in row] for row in w]}

    def lens(self, text: str, top: int = 5) -> dict:
        """The logit lens at the last position of `text`: the top tokens after 0..n_layer blocks."""
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 1000:
            raise ExplainError(f"top must be a whole number from 1 to 1000, got {top!r}")
        ids = self._text_ids(text)
        return {"tokens": self._tokens(ids), "layers": lens_layers(self, Trace(self.model, ids), top)}

    def neighbors(self, token, top: int = 10) -> dict:
        """The tokens nearest to `token` by the cosine of their rows of wte (itself left out)."""
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 1000:
            raise ExplainError(f"top must be a whole number from 1 to 1000, got {top!r}")
        t = self.token_id(token)
        return {"token": {"id": t, "token": self.label(t)},
                "neighbors": [{"id": i, "token": self.label(i), "cosine": c}
                              for i, c in neighbors(self.model, t, top)]}


def lens_layers(engine, trace: Trace, top: int, pos: int = -1) -> list[dict]:
    return [{"layer": k, "top": [{"id": i, "token": engine.label(i), "prob": p} for i, p in top_probs(row, top)]}
            for k, row in enumerate(trace.lens(pos))]


# --------------------------------------------------------------------------- the worker's requests

_last_trace: dict = {}  # (engine id, context ids) -> Trace: only the latest is kept (its memory)

VIEWS = ("sampling", "attention", "lens", "embeddings")
MAP_TOKENS = 12  # the embeddings map shows the context's last tokens, each with a few neighbours


def _whole(name: str, v, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ExplainError(f"{name} must be a whole number from {lo} to {hi}, got {v!r}")
    return v


def step_context(engine, prompt: str, ids) -> list[int]:
    """The tokens the model had read when it made a step: the prompt's, then `ids` (the tokens
    generated before that step)."""
    if not isinstance(ids, list) or any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
        raise ExplainError("ids must be a list of token ids (the tokens generated before the step)")
    context = engine.encode_prompt(prompt) + ids
    if len(context) > engine.model.config.n_ctx:
        raise ExplainError(f"the step read {len(context)} tokens, more than the context window of "
                           f"{engine.model.config.n_ctx}")
    for i in ids:
        check_index("a token id", i, engine.model.config.n_vocab, "tokens")
    return context


def trace_of(engine, context: list[int]) -> Trace:
    key = (id(engine), tuple(context))
    if key not in _last_trace:
        _last_trace.clear()  # first: the old trace's memory goes before the new one is made
        _last_trace[key] = Trace(engine.model, context)
    return _last_trace[key]


def explain_request(engine, req: dict) -> dict:
    """One view of one step, as the worker's `explain` message asks for it (protocol.md)."""
    view = req.get("view")
    if view not in VIEWS:
        raise ExplainError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    context = step_context(engine, req.get("prompt"), req.get("ids", []))
    cfg = engine.model.config
    out = {"view": view, "tokens": engine._tokens(context), "n_layer": cfg.n_layer, "n_head": cfg.n_head}
    if view == "embeddings":  # no forward pass: rows of wte only
        top = _whole("top", req.get("top", 10), 1, 100)
        token = req.get("token_id")
        token = context[-1] if token is None else check_index("the token id", token, cfg.n_vocab, "tokens")
        near = engine.neighbors(token, top)
        shown = list(dict.fromkeys(context))[-MAP_TOKENS:]
        if token not in shown:
            shown.append(token)
        emap = embedding_map(engine.model, shown, per_token=_whole("per_token", req.get("per_token", 3), 0, 10))
        for p in emap["points"]:
            p["token"] = engine.label(p["id"])
        return {**out, **near, **emap}
    trace = trace_of(engine, context)
    if view == "attention":
        layer = req.get("layer")
        layer = cfg.n_layer - 1 if layer is None else layer  # by default the last layer
        head = req.get("head")
        w = trace.attention(layer, head)
        return {**out, "layer": layer, "head": head, "weights": [[float(v) for v in row[:i + 1]]
                                                                 for i, row in enumerate(w)]}
    if view == "lens":
        return {**out, "layers": lens_layers(engine, trace, _whole("top", req.get("top", 5), 1, 100))}
    params = SamplingParams(req.get("temperature", 1.0), req.get("top_k", 0), req.get("top_p", 1.0),
                            _seed(req.get("seed")))
    res = sampling_view(trace.logits(), params, top=_whole("top", req.get("top", 30), 1, 1000),
                        samples=req.get("samples", 0))
    for r in res["rows"]:
        r["token"] = engine.label(r["id"])
    if "counts" in res:
        res["counts"] = [{"id": i, "token": engine.label(i), "count": c} for i, c in res["counts"]]
    if isinstance(res["seed"], int) and res["seed"] >= 2**53:
        res["seed"] = str(res["seed"])
    return {**out, **res}


def _seed(seed):
    if isinstance(seed, str) and seed.strip().isdigit():
        return int(seed)
    return seed
