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
