"""The arithmetic of presence ratings (pipeline/presence.py): the importance sampling, the Bayesian
rater model and the weighted correlation, including the sanity tests of Oikarinen, Yan & Weng
(ICML 2025) that recall at the top fails: a label made over-specific or over-generic must score lower."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import presence

N = 4000


def world(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One unit: a concept in 5-20% of the images and an activation that rises where it is."""
    truth = rng.random(N) < rng.uniform(0.05, 0.2)
    return presence.standardise(truth * rng.uniform(1.5, 3.0) + rng.normal(size=N)), truth


def rated(truth: np.ndarray, ratings: int, flip: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    yes = (truth[:, None] != (rng.random((len(truth), ratings)) < flip)).sum(axis=1)
    return yes, ratings - yes


def estimate(a, truth, draws, flip, rng, ratings=3) -> float:
    yes, no = rated(truth[draws.images], ratings, flip, rng)
    c = presence.posterior(yes, no, flip)
    return presence.unit_scores(a[draws.images], c, draws, N, rng, boots=0).rho


def test_the_sampling_distribution_covers_every_image_and_the_weights_undo_it() -> None:
    rng = np.random.default_rng(0)
    a, _ = world(rng)
    q = presence.sampling_distribution(a)
    assert q.sum() == pytest.approx(1.0) and q.min() >= presence.GAMMA / N - 1e-15
    assert q[np.argmax(np.abs(a))] > 3 / N > 3 * q[np.argmin(np.abs(a))], "the strongest are drawn far more often"
    draws = presence.draw(a, 5000, rng)
    assert draws.weight.sum() == pytest.approx(N, rel=0.05), "the draws stand for the whole probe set"
    with_top = presence.draw(a, 50, rng, top=np.argsort(-a)[:60])
    assert with_top.top[:60].all() and not with_top.top[60:].any() and (with_top.weight[:60] == 1).all()
    assert not set(with_top.images[60:]) & set(np.argsort(-a)[:60]), "top images are asked once, not drawn again"


def test_a_proxy_steers_the_draws_towards_the_label() -> None:
    rng = np.random.default_rng(1)
    a, truth = world(rng)
    guided = presence.draw(a, 400, rng, proxy=truth.astype(float))
    plain = presence.draw(a, 400, rng)
    assert truth[guided.images].mean() > truth[plain.images].mean()


def test_the_posterior_weighs_ratings_by_the_flip_rate_and_the_prior() -> None:
    odds = 0.05 / 0.95 * (0.77 / 0.23)  # two yes and one no at flip 0.23, prior 0.05
    assert presence.posterior(np.array([2]), np.array([1]), 0.23)[0] == pytest.approx(odds / (1 + odds))
    assert presence.posterior(np.array([0]), np.array([0]), 0.23, 0.4)[0] == pytest.approx(0.4)
    assert list(presence.posterior(np.array([2, 0, 1]), np.array([1, 3, 1]), 0.0, 0.3)) == [1.0, 0.0, 0.3]
    assert presence.flip_rate(0, 0) == presence.FLIP and presence.flip_rate(77, 23) == pytest.approx(0.23)


def test_noiseless_raters_on_the_whole_probe_set_give_the_plain_correlation_exactly() -> None:
    rng = np.random.default_rng(2)
    a, truth = world(rng)
    everything = presence.Draws(np.arange(N), np.ones(N), np.zeros(N, dtype=bool))
    rho = estimate(a, truth, everything, 0.0, rng, ratings=1)
    assert rho == pytest.approx(np.corrcoef(a, truth)[0, 1], abs=1e-12)


def test_sampled_estimates_are_unbiased_within_their_standard_error() -> None:
    rng = np.random.default_rng(3)
    a, truth = world(rng)
    rho = np.corrcoef(a, truth)[0, 1]
    values = np.array([estimate(a, truth, presence.draw(a, 180, rng), 0.0, rng) for _ in range(300)])
    error = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - rho) <= 2 * error, (values.mean(), rho, error)


def test_the_bootstrap_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(4)
    a, truth = world(rng)
    rho = np.corrcoef(a, truth)[0, 1]
    covered = 0
    for _ in range(60):
        draws = presence.draw(a, 180, rng)
        scores = presence.unit_scores(a[draws.images], truth[draws.images].astype(float), draws, N, rng, boots=400)
        covered += scores.rho_low <= rho <= scores.rho_high
    assert covered >= 51, f"{covered} of 60 intervals cover the true correlation"


def test_over_specific_and_over_generic_labels_score_lower_but_the_papers_precision_misses_the_generic() -> None:
    """ICML 2025's sanity tests: drop each positive with probability 0.5 (over-specific), or add random
    positives until there are twice as many (over-generic). Raters flip 10% of answers, 3 ratings each
    of 180 importance-sampled images per label."""
    rng = np.random.default_rng(5)
    units, specific_drops, generic_drops, precision_kept = 60, 0, 0, 0
    for _ in range(units):
        a, truth = world(rng)
        positives, negatives = np.flatnonzero(truth), np.flatnonzero(~truth)
        specific = truth.copy()
        specific[positives[rng.random(len(positives)) < 0.5]] = False
        generic = truth.copy()
        generic[rng.choice(negatives, len(positives), replace=False)] = True
        draws = presence.draw(a, 180, rng)
        right, narrow, broad = (estimate(a, label, draws, 0.1, rng) for label in (truth, specific, generic))
        specific_drops += narrow < right
        generic_drops += broad < right
        top = np.argsort(-a)[:60]
        precision_kept += generic[top].mean() >= truth[top].mean()
    assert specific_drops >= 0.9 * units and generic_drops >= 0.9 * units, (specific_drops, generic_drops)
    assert precision_kept == units, "the paper's precision never drops for the over-generic label"


def test_noisy_ratings_do_not_shrink_the_score_as_a_plain_correlation_with_the_posterior_does() -> None:
    rng = np.random.default_rng(6)
    a, truth = world(rng)
    rho = np.corrcoef(a, truth)[0, 1]
    yes, no = rated(truth, 3, 0.23, rng)
    c = presence.posterior(yes, no, 0.23, truth.mean())
    ones = np.ones(N)
    plain = presence.weighted_correlation(a, c, ones)
    score = float(presence.concept_correlations(a[None], c[None], ones[None])[0])
    assert abs(score - rho) < 0.03 < rho - plain, (score, plain, rho)
