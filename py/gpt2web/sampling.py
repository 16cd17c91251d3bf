"""Turning logits into a choice, and showing why.

The model is deterministic; only the draw is random. Following the seed article: the logits
are divided by the temperature T, the top-k / top-p filters keep a few candidates, a softmax
over those gives the *sampling distribution*, and one uniform draw picks a token. T = 0 means
greedy (the most likely token, ties broken by the lower id).

The candidates view shows, for the top N tokens, both their probability under the model
(T = 1, softmax over all 50,257 logits: the model's real belief) and their share in the
sampling distribution actually used; plus the total model probability the view covers.

Draws use Python's `random.Random(seed)`, whose stream is the same in every CPython build,
Pyodide included, so a seed gives the same text on the command line and in the browser.
All arithmetic here is float64.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from . import kernels


class SamplingError(ValueError):
    """An invalid sampling setting; the message names the setting and its allowed range."""


@dataclass
class SamplingParams:
    temperature: float = 1.0  # 0: greedy
    top_k: int = 0  # 0: no limit
    top_p: float = 1.0  # 1: no limit
    seed: int | None = None  # None: a fresh random seed (reported in the result)

    def validate(self) -> "SamplingParams":
        def num(name, v):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
                raise SamplingError(f"{name} must be a number, got {v!r}")
            return v

        t = num("temperature", self.temperature)
        if not 0 <= t <= 10:
            raise SamplingError(f"temperature must be between 0 and 10 (0 = greedy), got {t}")
        k = num("top-k", self.top_k)
        if k != int(k) or k < 0:
            raise SamplingError(f"top-k must be a whole number >= 0 (0 = no limit), got {k}")
        p = num("top-p", self.top_p)
        if not 0 < p <= 1:
            raise SamplingError(f"top-p must be in (0, 1] (1 = no limit), got {p}")
        if self.seed is not None:
            s = num("seed", self.seed)
            if s != int(s) or not 0 <= s < 2**63:
                raise SamplingError(f"seed must be a whole number between 0 and 2^63-1, got {s}")
            self.seed = int(s)
        self.temperature, self.top_k, self.top_p = float(t), int(k), float(p)
        return self


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits))


def softmax_z(logits: np.ndarray) -> tuple[float, float]:
    """(m, z): the largest logit and sum(exp(logits - m)), so that p_i = exp(logits_i - m) / z.

    One pass over the 50,257 logits per generated token: in the browser a WebAssembly kernel
    (~20x faster than NumPy there; float32 exp, summed in float64), else NumPy float64.
    """
    if kernels.available() and getattr(logits, "dtype", None) == np.float32:
        return kernels.softmax_z(logits)
    x = np.asarray(logits, dtype=np.float64)
    m = x.max()
    return float(m), float(np.exp(x - m).sum())


TOPK_KERNEL_MAX = 128  # ranked() uses the top-k kernel up to this n (its work grows with n)


def ranked(logits: np.ndarray, n: int) -> np.ndarray:
    """Ids of the n largest logits, largest first, ties by lower id.

    Runs for every generated token over all 50,257 logits: n = 1 (greedy) is an argmax, whose
    first maximum is the lowest id, rather than a partition and a sort.
    """
    x = np.asarray(logits)
    n = min(n, x.shape[0])
    if n == 1:
        return np.array([np.argmax(x)])
    if n <= TOPK_KERNEL_MAX and x.dtype == np.float32 and x.ndim == 1 and kernels.available():
        got = kernels.topk(x, n)  # one pass in WebAssembly (a partition here costs ~1 ms)
        if got is not None:
            return got
    if n < x.shape[0]:
        part = np.argpartition(-x, n - 1)[:n]
        # argpartition may cut through a tie at the boundary: add back all ties.
        cut = x[part].min()
        part = np.flatnonzero(x >= cut)
    else:
        part = np.arange(x.shape[0])
    order = np.lexsort((part, -x[part].astype(np.float64)))
    return part[order][:n]


NUCLEUS_START = 256  # tokens ranked first when looking for the top-p nucleus (then x8, ...)


def sampling_distribution(logits: np.ndarray, params: SamplingParams) -> tuple[np.ndarray, np.ndarray]:
    """The tokens that can be drawn, most likely first, and their probabilities (sum 1)."""
    if params.temperature == 0:
        return ranked(logits, 1), np.ones(1)
    raw = np.asarray(logits)  # ranked on as given: widening to float64 keeps the order
    x = raw.astype(np.float64)
    k = params.top_k or x.shape[0]
    if params.top_p < 1.0 and k > NUCLEUS_START:
        # The nucleus is usually a small part of the k tokens: rank only enough of them to
        # reach top_p (a full ranking of 50,257 logits costs ~6 ms a token in the browser).
        e = np.exp((x - x.max()) / params.temperature)  # unnormalized probabilities
        total = e.sum() if k == x.shape[0] else e[ranked(raw, k)].sum()
        m = NUCLEUS_START
        while True:
            if m >= k:
                ids = ranked(raw, k)
                break
            # The mass of the top m needs only which tokens they are (tied tokens at the cut
            # have the same e): a partition, no sort. Then rank them, and keep them if the cut
            # below falls inside (the top m are a prefix of the top k, same order).
            if e[np.argpartition(-raw, m - 1)[:m]].sum() >= params.top_p * total:
                ids = ranked(raw, m)
                if np.searchsorted(np.cumsum(e[ids] / total), params.top_p - 1e-12) < m:
                    break
            m *= 8
        probs = e[ids] / total
    else:
        ids = ranked(raw, k)
        z = x[ids] / params.temperature
        probs = np.exp(z - z[0])
        probs /= probs.sum()
    if params.top_p < 1.0:
        # Keep the smallest prefix whose mass reaches top_p (at least one token).
        keep = int(np.searchsorted(np.cumsum(probs), params.top_p - 1e-12)) + 1
        ids, probs = ids[:keep], probs[:keep] / probs[:keep].sum()
    return ids, probs


@dataclass
class Choice:
    id: int
    prob: float  # under the model, T = 1
    sample_prob: float  # under the sampling distribution
    candidates: list[dict] = field(default_factory=list)
    shown_mass: float = 0.0  # model probability covered by the candidates
    rank: int = 0  # 1 = the model's favourite


class Sampler:
    """Draws tokens with fixed settings and a seeded generator."""

    def __init__(self, params: SamplingParams):
        self.params = params.validate()
        if self.params.seed is None:
            self.params.seed = random.SystemRandom().randrange(2**31)
        self.rng = random.Random(self.params.seed)

    def draw(self, ids: np.ndarray, probs: np.ndarray, logits: np.ndarray | None = None) -> int:
        """One token from the sampling distribution `ids, probs`, from uniform draws of the seeded
        generator mapped through a cumulative distribution.

        The cumulative sum runs in token-id order, not in order of probability: two engines
        whose logits differ in the last bits (BLAS vs WebAssembly kernels) may rank two
        near-equal tokens differently, and a probability order would then move every later
        boundary by a whole token's mass; in id order a boundary moves only by the rounding
        difference, so the same seed picks the same token in CPython and in the browser.

        With `logits` (the step's logits, as sampling_distribution was given them) and a top-k or
        top-p cut, the draw stays in step even where two engines cut differently, at a
        near-tie: u picks a token from the distribution *before* the cuts (temperature only,
        every token, in id order), and a token the cuts left out means another draw, until one
        is kept. The first u is the seeded stream's next number, as without cuts; draws again
        come from a stream seeded by that u, so every step takes one number from the seeded
        stream. The kept tokens' chances are those of `probs` (the cuts only remove tokens, the
        rest keep their ratios), and the boundaries do not depend on what the cuts keep: two
        engines that disagree about one token at the cut pick differently only when a draw
        lands on that token (about its share of the mass), not whenever it falls anywhere
        between the two tokens' ids, as a cumulative sum over the kept tokens would.
        """
        if len(ids) == 1:
            return int(ids[0])
        if logits is not None and ids.shape[0] < np.shape(logits)[0]:
            return self._draw_through_cuts(ids, probs, np.asarray(logits))
        u = self.rng.random()
        if ids.shape[0] == int(ids.max()) + 1:
            # Every token (no top-k/top-p limit): ids is a permutation of 0..n-1, whose id order
            # is its inverse permutation, the same as argsort's but without a 50,257-id sort.
            order = np.empty_like(ids)
            order[ids] = np.arange(ids.shape[0])
        else:
            order = np.argsort(ids, kind="stable")
        i = int(np.searchsorted(np.cumsum(probs[order]), u * probs.sum(), side="right"))
        return int(ids[order[min(i, len(ids) - 1)]])

    MAX_DRAWS = 1 << 16  # then the cut leaves so little mass (< ~1e-4) that one draw over it decides

    def _draw_through_cuts(self, ids: np.ndarray, probs: np.ndarray, logits: np.ndarray) -> int:
        # Every token's chance before the cuts, in id order. Tokens more than 30 (x temperature)
        # below the top logit are left out: each has less than e^-30 = 1e-13 of the top token's
        # chance, far below the rounding of the sums (a real model puts many of its 50,257
        # tokens down there; a small or untrained one few).
        z = np.array(logits, dtype=np.float64)
        z -= z.max()
        if self.params.temperature != 1.0:
            z /= self.params.temperature
        near = np.flatnonzero(z > -30.0)  # in id order
        table = _IdOrderTable(np.exp(z, out=z) if near.shape[0] == z.shape[0] else np.exp(z[near]))
        cut = np.ones(z.shape[0], dtype=bool)
        cut[ids] = False
        kept = ~cut[near]
        u = self.rng.random()  # one number from the seeded stream per step, cuts or not
        hit = int(table.find(np.array([u]))[0])
        if kept[hit]:
            return int(near[hit])
        # Landed on a token the cuts left out: draw again, from a stream of this step's own
        # (seeded by u), so that the seeded stream moves on by one number per step whatever
        # happens here. Rounds of 1, 2, 4, ... 1024 draws (the first kept one wins): few rounds
        # even when the cuts keep a small part of the mass (1 / that part draws expected).
        again = random.Random(int(u * 2**53))  # u = k / 2^53 exactly
        drawn, n = 0, 1
        while drawn < self.MAX_DRAWS:
            hits = table.find(np.array([again.random() for _ in range(n)]))
            ok = np.flatnonzero(kept[hits])
            if ok.size:
                return int(near[hits[ok[0]]])
            drawn += n
            n = min(2 * n, 1024)
        order = np.argsort(ids, kind="stable")  # practically never: one draw over the kept tokens
        i = int(np.searchsorted(np.cumsum(probs[order]), again.random() * probs.sum(), side="right"))
        return int(ids[order[min(i, len(ids) - 1)]])

    def choose(self, logits: np.ndarray, n_candidates: int = 10) -> Choice:
        ids, probs = sampling_distribution(logits, self.params)
        chosen = self.draw(ids, probs, logits)
        return describe(logits, chosen, ids, probs, n_candidates)


class _IdOrderTable:
    """Where draws u in [0, 1) land in weights w laid end to end in id order: token i for
    u * sum(w) in [w_0 + ... + w_{i-1}, w_0 + ... + w_i). Sums per block of 256 ids and a running
    sum inside only the blocks hit (a running sum over all 50,257 weights costs more than the
    exp before it)."""

    B = 256

    def __init__(self, w: np.ndarray):
        self.n = w.shape[0]
        rows = -(-self.n // self.B)
        self.w = np.zeros(rows * self.B)
        self.w[:self.n] = w
        self.w = self.w.reshape(rows, self.B)
        self.ends = np.cumsum(self.w.sum(axis=1))  # the running total at each block's end
        self._cum = None

    def find(self, us: np.ndarray) -> np.ndarray:
        targets = us * self.ends[-1]
        if us.shape[0] > 8:  # many draws: one running sum over everything
            if self._cum is None:
                self._cum = np.cumsum(self.w.reshape(-1))
            return np.minimum(np.searchsorted(self._cum, targets, side="right"), self.n - 1)
        out = []
        for t in targets.tolist():
            r = min(int(np.searchsorted(self.ends, t, side="right")), self.ends.shape[0] - 1)
            before = float(self.ends[r - 1]) if r else 0.0
            col = int(np.searchsorted(np.cumsum(self.w[r]), t - before, side="right"))
            out.append(min(r * self.B + min(col, self.B - 1), self.n - 1))
        return np.array(out, dtype=np.int64)


def describe(logits: np.ndarray, chosen: int, ids: np.ndarray, probs: np.ndarray,
             n_candidates: int) -> Choice:
    """The candidates view of one step: top tokens, model and sampling probabilities.

    `ids, probs` are what sampling_distribution returned (a prefix of the model's ranking).

    Runs for every generated token, so over the 50,257 logits it makes one exp pass and a few
    comparisons (ranks and ordering use the logits as they come: widening float32 to float64
    is exact, so the order is the same) and normalizes only the probabilities it shows.
    """
    raw = np.asarray(logits)
    m, z = softmax_z(raw)  # the model's probability of i is exp(raw[i] - m) / z
    if ids.shape[0] > 256:  # e.g. no top-k limit: a dense table, not a 50,257-entry dict
        dense = np.zeros(raw.shape[0])
        dense[ids] = probs
        share = lambda i: float(dense[i])  # noqa: E731
    else:
        table = dict(zip(ids.tolist(), probs.tolist()))
        share = lambda i: float(table.get(i, 0.0))  # noqa: E731
    # ids (from sampling_distribution) is the start of the model's ranking: when it is long
    # enough, its first n_candidates are the candidates, without ranking 50,257 logits again.
    if n_candidates <= 0:
        top = []
    elif ids.shape[0] >= n_candidates:
        top = ids[:n_candidates].tolist()
    else:
        top = ranked(raw, n_candidates).tolist()
    cands = [{"id": int(i), "prob": math.exp(float(raw[i]) - m) / z, "sample_prob": share(i),
              "chosen": int(i) == chosen} for i in top]
    if chosen in top:  # the ranking's order is the rank's: higher logit first, ties by lower id
        rank = top.index(chosen) + 1
    else:  # 1 + tokens with a higher logit + tokens with the same logit and a lower id
        rank = int((raw > raw[chosen]).sum() + (raw[:chosen] == raw[chosen]).sum()) + 1
    return Choice(id=chosen, prob=math.exp(float(raw[chosen]) - m) / z, sample_prob=share(chosen),
                  candidates=cands, shown_mass=float(sum(c["prob"] for c in cands)), rank=rank)
