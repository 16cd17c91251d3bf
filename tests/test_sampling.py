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
