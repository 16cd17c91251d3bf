"""The sampler: greedy, filters, seeded determinism, the candidates view."""

from __future__ import annotations

import numpy as np
import pytest

from gpt2web.sampling import Sampler, SamplingError, SamplingParams, ranked, sampling_distribution, softmax

rng = np.random.default_rng(0)
LOGITS = (rng.standard_normal(50257) * 3).astype(np.float32)


def test_greedy_picks_the_argmax_and_ties_go_to_the_lower_id():
    s = Sampler(SamplingParams(temperature=0))
    assert s.choose(LOGITS).id == int(np.argmax(LOGITS))
    tie = np.zeros(10, dtype=np.float32)
    tie[[7, 3]] = 5
    assert Sampler(SamplingParams(temperature=0)).choose(tie).id == 3


def test_same_seed_same_draws_different_seed_different_draws():
    draws = lambda seed: [Sampler(SamplingParams(seed=seed)).choose(LOGITS).id for _ in range(1)] + \
        [c.id for c in (lambda s: [s.choose(LOGITS) for _ in range(30)])(Sampler(SamplingParams(seed=seed)))]  # noqa: E731
    assert draws(42) == draws(42)
    assert draws(42) != draws(43)


def test_draws_follow_the_distribution():
    logits = np.log(np.array([0.5, 0.3, 0.2], dtype=np.float64))
    s = Sampler(SamplingParams(seed=1))
    counts = np.bincount([s.choose(logits, 0).id for _ in range(6000)], minlength=3) / 6000
    np.testing.assert_allclose(counts, [0.5, 0.3, 0.2], atol=0.03)


def test_top_k_and_top_p_keep_the_right_tokens():
    ids, probs = sampling_distribution(LOGITS, SamplingParams(top_k=5).validate())
    assert list(ids) == list(np.argsort(-LOGITS)[:5])
    assert probs.sum() == pytest.approx(1.0)
    ids, probs = sampling_distribution(LOGITS, SamplingParams(top_p=0.5).validate())
    full = softmax(LOGITS)
    order = np.argsort(-full)
    mass_before_last = full[order[: len(ids) - 1]].sum()
    assert mass_before_last < 0.5 <= full[order[: len(ids)]].sum() + 1e-12
    assert list(ids) == list(order[: len(ids)])


def test_temperature_flattens_and_sharpens():
    hot = sampling_distribution(LOGITS, SamplingParams(temperature=2.0).validate())[1]
    cold = sampling_distribution(LOGITS, SamplingParams(temperature=0.5).validate())[1]
    assert cold[0] > softmax(LOGITS).max() > hot[0]


def test_candidates_view_sums_to_the_shown_mass():
    c = Sampler(SamplingParams(seed=3, top_k=20)).choose(LOGITS, n_candidates=10)
    full = softmax(LOGITS)
    assert [x["id"] for x in c.candidates] == list(ranked(LOGITS, 10))
    assert c.shown_mass == pytest.approx(sum(full[x["id"]] for x in c.candidates))
    for x in c.candidates:
        assert x["prob"] == pytest.approx(full[x["id"]], rel=1e-9)
    assert sum(x["chosen"] for x in c.candidates) <= 1
    assert c.prob == pytest.approx(full[c.id])


@pytest.mark.parametrize("bad, match", [
    (dict(temperature=-1), "temperature"), (dict(temperature=float("nan")), "temperature"),
    (dict(top_k=-2), "top-k"), (dict(top_k=2.5), "top-k"), (dict(top_p=0), "top-p"),
    (dict(top_p=1.5), "top-p"), (dict(seed=-1), "seed"), (dict(temperature="hot"), "temperature"),
])
def test_invalid_settings_are_named(bad, match):
    with pytest.raises(SamplingError, match=match):
        SamplingParams(**bad).validate()


def _full_ranking_distribution(logits, params):
    """sampling_distribution as defined: rank every token, softmax, cut at top-k, then top-p."""
    x = np.asarray(logits, dtype=np.float64)
    ids = ranked(x, params.top_k or x.shape[0])
    probs = np.exp(x[ids] / params.temperature - x[ids[0]] / params.temperature)
    probs /= probs.sum()
    if params.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(probs), params.top_p - 1e-12)) + 1
        ids, probs = ids[:keep], probs[:keep] / probs[:keep].sum()
    return ids, probs


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0, 12.0])
@pytest.mark.parametrize("top_k", [0, 300, 5000])
def test_top_p_search_ranks_only_what_it_needs_and_matches_a_full_ranking(scale, top_k):
    # Flat and peaked distributions, ties at the top: the nucleus found by ranking 256, 2048,
    # ... tokens is the one a full ranking gives.
    r = np.random.default_rng(int(scale * 10) + top_k)
    for temperature in (0.4, 1.0, 2.0):
        for top_p in (0.01, 0.5, 0.9, 0.999):
            x = (r.standard_normal(50257) * scale).astype(np.float32)
            x[r.integers(0, 50257, 20)] = x.max()
            params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p).validate()
            ids, probs = sampling_distribution(x, params)
            want_ids, want_probs = _full_ranking_distribution(x, params)
            assert list(ids) == list(want_ids)
            np.testing.assert_allclose(probs, want_probs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("params", [SamplingParams(seed=4, top_k=3), SamplingParams(seed=4, top_p=0.6),
                                    SamplingParams(seed=4, top_k=2, temperature=3.0)])
def test_draws_through_cuts_follow_the_sampling_distribution(params):
    logits = np.log(np.array([0.05, 0.4, 0.1, 0.3, 0.15], dtype=np.float64))
    ids, probs = sampling_distribution(logits, params.validate())
    s = Sampler(params)
    n = 8000
    counts = np.bincount([s.draw(ids, probs, logits) for _ in range(n)], minlength=5) / n
    want = np.zeros(5)
    want[ids] = probs
    np.testing.assert_allclose(counts, want, atol=0.02)
    assert counts[np.setdiff1d(np.arange(5), ids)].sum() == 0  # nothing the cuts left out


def _draws(logits, params, seeds):
    """The first token each seed draws from these logits, as a generation's step draws it."""
    ids, probs = sampling_distribution(logits, params.validate())
    return np.array([Sampler(SamplingParams(params.temperature, params.top_k, params.top_p, seed))
                     .draw(ids, probs, logits) for seed in seeds])


def _rounding(x, seed):
    """x as another engine computes it: the same logits up to float32 rounding (~1e-7 relative)."""
    noise = np.random.default_rng(seed).uniform(-1, 1, x.shape).astype(np.float32) * np.float32(2e-7)
    return (x * (1 + noise)).astype(np.float32)


def test_seeded_draws_stay_in_step_when_top_k_cuts_at_a_near_tie():
    # Tokens ranked 40th and 41st tie to the last bits, far apart in the vocabulary: one engine
    # keeps the first, the other the second. Only a draw that lands on one of the two may differ.
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(50257) * 2).astype(np.float32)
    a, b = 11, 50001
    x[[a, b]] = -10
    top = np.sort(x)[::-1]
    v = np.float32((top[38] + top[39]) / 2)  # between the 39th and 40th of the others
    one, two = x.copy(), _rounding(x, 1)
    one[a], one[b] = v, np.nextafter(v, np.float32(-np.inf))
    two[a], two[b] = np.nextafter(v, np.float32(-np.inf)), v
    params = SamplingParams(top_k=40, temperature=1.5)
    ids1, ids2 = (sampling_distribution(l, params.validate())[0] for l in (one, two))
    assert a in ids1 and b not in ids1 and b in ids2 and a not in ids2  # the engines do cut differently
    seeds = range(1000)
    d1, d2 = _draws(one, params, seeds), _draws(two, params, seeds)
    differ = d1 != d2
    assert differ.sum() > 0  # the disputed tokens do get drawn now and then
    assert np.all((d1[differ] == a) | (d2[differ] == b)), "a draw that hit neither disputed token differs"
    share = float(sampling_distribution(one, params.validate())[1][list(ids1).index(a)])
    assert differ.mean() < 3 * 2 * share + 0.005  # about the two tokens' shares, not a large part


def test_seeded_draws_stay_in_step_when_top_p_cuts_at_a_near_tie():
    # The nucleus ends exactly at top_p in one engine; the other, whose last kept token is a
    # hair less likely, needs one token more.
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(50257) * 2.5).astype(np.float32)
    params = SamplingParams(top_p=0.3, temperature=1.0)
    p = softmax(x)
    order = np.argsort(-p, kind="stable")
    m = int(np.searchsorted(np.cumsum(p[order]), 0.3)) + 1
    top_p = float(np.cumsum(p[order])[m - 1])  # the nucleus of one engine ends at a token's edge
    params = SamplingParams(top_p=top_p, temperature=1.0)
    one = x.copy()
    two = _rounding(x, 2)
    two[order[m - 1]] = np.float32(x[order[m - 1]] - 1e-4)
    ids1, ids2 = (sampling_distribution(l, params.validate())[0] for l in (one, two))
    extra = set(ids2.tolist()) - set(ids1.tolist())
    assert len(ids2) == len(ids1) + 1 and len(extra) == 1  # the engines do cut differently
    (c,) = extra
    seeds = range(1000)
    d1, d2 = _draws(one, params, seeds), _draws(two, params, seeds)
    differ = d1 != d2
    assert np.all(d2[differ] == c), "a draw that did not hit the disputed token differs"
    assert differ.mean() < 3 * float(p[c]) / top_p + 0.005
