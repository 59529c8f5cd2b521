"""Does a unit's label hold beyond its top images? The arithmetic of "Beyond Top Activations"
(Oikarinen et al., CVPR 2026), in plain NumPy: which images to ask raters about (model-guided
importance sampling over the whole probe set), what their yes/no ratings say (a Bayesian rater
model with one global flip rate), and the unit's scores (the importance-weighted correlation between
its activation and the concept, with a bootstrap interval; precision, recall, F1 and IoU of its top
images against the concept; the concept's base rate).

Notation: N probe images; a unit's activations `a` (N), standardised over all N; a proxy `c` in
[0, 1] for "the label is in image i" (from elsewhere: CLIP scores, dataset labels), or none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GAMMA = 0.2  # the share of the sampling distribution that is uniform (no image has zero chance)
PRIOR = 0.05  # P(label in image) before any rating, where no proxy says otherwise
FLIP = 0.23  # the raters' flip rate where no gold answer measured it
PROXY_CLIP = (0.001, 0.999)


def standardise(values: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over all images (a constant stays zero)."""
    values = np.asarray(values, dtype=np.float64)
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


def sampling_distribution(
    activation: np.ndarray, proxy: np.ndarray | None = None, gamma: float = GAMMA, pool: np.ndarray | None = None
) -> np.ndarray:
    """q_i = (1 - gamma) q*_i + gamma / N over the pool (all images, or the images not asked anyway),
    with q*_i proportional to |a_i c_i| (standardised activation and proxy) or, without a proxy, |a_i|.
    Images outside the pool get 0."""
    n = len(activation)
    chosen = np.ones(n, dtype=bool) if pool is None else np.asarray(pool, dtype=bool)
    a = standardise(activation)
    guide = np.abs(a * standardise(proxy)) if proxy is not None else np.abs(a)
    guide = np.where(chosen, guide, 0.0)
    size = int(chosen.sum())
    if size == 0:
        raise ValueError("There is no image to draw from.")
    total = guide.sum()
    star = guide / total if total > 0 else np.where(chosen, 1.0 / size, 0.0)
    return (1 - gamma) * star + np.where(chosen, gamma / size, 0.0)


@dataclass
class Draws:
    """The images a unit's label is asked about: `images` (probe indices; a sampled image can be drawn
    more than once), each with the number of probe images it stands for (`weight`, summing to about the
    pool's size) and whether it is one of the unit's top images (asked for sure, weight 1)."""

    images: np.ndarray
    weight: np.ndarray
    top: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def draw(
    activation: np.ndarray,
    count: int,
    rng: np.random.Generator,
    proxy: np.ndarray | None = None,
    top: np.ndarray | None = None,
    gamma: float = GAMMA,
) -> Draws:
    """`count` images i.i.d. from the sampling distribution, weighted 1 / (count q_i) so that the draws
    stand for the pool; the top images (probe indices) are added with weight 1 and left out of the pool."""
    n = len(activation)
    top = np.asarray([] if top is None else top, dtype=int)
    pool = np.ones(n, dtype=bool)
    pool[top] = False
    q = sampling_distribution(activation, proxy, gamma, pool)
    images = rng.choice(n, size=count, replace=True, p=q)
    weight = 1.0 / (count * q[images])
    return Draws(
        np.concatenate([top, images]),
        np.concatenate([np.ones(len(top)), weight]),
        np.concatenate([np.ones(len(top), dtype=bool), np.zeros(count, dtype=bool)]),
    )


def flip_rate(gold_right: int, gold_wrong: int) -> float:
    """The raters' probability of answering the opposite of the truth, from the gold answers (FLIP where
    there are none); kept within [0.01, 0.49] so that a rating always says something."""
    total = gold_right + gold_wrong
    if total == 0:
        return FLIP
    return float(np.clip(gold_wrong / total, 0.01, 0.49))


def posterior(yes: np.ndarray, no: np.ndarray, flip: float, prior: np.ndarray | float = PRIOR) -> np.ndarray:
    """P(label in image | its ratings): each rating is right with probability 1 - flip, whatever the
    image and the rater (no per-rater parameters, so one-off crowd workers are fine)."""
    prior = np.clip(np.asarray(prior, dtype=np.float64), *PROXY_CLIP)
    yes, no = np.asarray(yes, dtype=np.float64), np.asarray(no, dtype=np.float64)
    if flip <= 0:  # raters who never err: the majority is the truth, a tie leaves the prior
        return np.where(yes > no, 1.0, np.where(no > yes, 0.0, prior))
    log_odds = np.log(prior / (1 - prior)) + (yes - no) * np.log((1 - flip) / flip)
    return 1.0 / (1.0 + np.exp(-log_odds))


def concept_correlations(a: np.ndarray, c: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The correlation of each row's activation with the concept its posteriors `c` stand for (B x n):
    `weighted_correlations(..., concept=True)`, the unit's score beyond the top images."""
    return weighted_correlations(a, c, weight, concept=True)


def weighted_correlation(a: np.ndarray, c: np.ndarray, weight: np.ndarray) -> float:
    """Pearson's correlation with each pair counted `weight` times: means and variances of both are
    weighted too (with weight 1 everywhere it is the plain correlation)."""
    return float(weighted_correlations(np.asarray(a)[None], np.asarray(c)[None], np.asarray(weight)[None])[0])


def weighted_correlations(a: np.ndarray, c: np.ndarray, weight: np.ndarray, concept: bool = False) -> np.ndarray:
    """`weighted_correlation` of each row (B x n each): the bootstrap's resamples at once. NaN where a
    row's activation or concept does not vary.

    With `concept`, `c` is each image's posterior P(label in image | ratings) of a yes/no concept t, and
    the result estimates the correlation with t itself: a posterior is t shrunk by the raters' noise
    (Cov(a, c) = Cov(a, t) Var(c) / Var(t) when ratings depend on the image only through t), so the
    plain correlation with c understates it. The estimate is Cov(a, c) sd(t) / (Var(c) sd(a)), with
    Var(t) = m (1 - m) for the concept's weighted mean m; where c is 0 or 1 (raters who never err)
    Var(c) = m (1 - m) and it is the plain correlation."""
    w = np.asarray(weight, dtype=np.float64)
    a, c = np.asarray(a, dtype=np.float64), np.asarray(c, dtype=np.float64)
    total = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mc = (w * c).sum(axis=1, keepdims=True) / total
        da = a - (w * a).sum(axis=1, keepdims=True) / total
        dc = c - mc
        cov = (w * da * dc).sum(axis=1)
        va, vc = (w * da**2).sum(axis=1), (w * dc**2).sum(axis=1)
        # a spread below rounding noise is no spread (a constant's deviations are not exactly 0)
        flat = (va <= 1e-12 * (w * a**2).sum(axis=1)) | (vc <= 1e-12 * (w * c**2).sum(axis=1))
        if concept:
            m = mc[:, 0]
            spread_t = np.sqrt(np.clip(m * (1 - m), 0, None) * total[:, 0])  # on the same scale as vc
            value = np.clip(cov * spread_t / (np.where(flat, 1.0, vc) * np.sqrt(np.where(flat, 1.0, va))), -1, 1)
        else:
            value = cov / np.sqrt(np.where(flat, 1.0, va * vc))
        return np.where(flat, np.nan, value)


@dataclass
class Scores:
    """A unit's scores beyond its top images."""

    rho: float
    rho_low: float
    rho_high: float
    base_rate: float
    precision: float | None  # of the top images against "c >= 0.5" (needs them rated)
    recall: float | None
    f1: float | None
    iou: float | None


def unit_scores(
    a: np.ndarray, c: np.ndarray, draws: Draws, probe_size: int, rng: np.random.Generator, boots: int = 1000
) -> Scores:
    """`a` and `c` are the drawn images' standardised activations and posteriors (in `draws`' order);
    rho is `concept_correlations`' estimate of the correlation with the concept itself.
    The interval is the bootstrap's 2.5 and 97.5 percentiles over resampled draws (top images kept).
    Counts over the probe set (positives, the base rate) are the weights' share times `probe_size`,
    so a sample of which only some draws were rated still stands for the whole set."""
    a, c = np.asarray(a, dtype=np.float64), np.asarray(c, dtype=np.float64)
    rho = float(concept_correlations(a[None], c[None], draws.weight[None])[0])
    sampled, fixed = np.flatnonzero(~draws.top), np.flatnonzero(draws.top)
    low = high = float("nan")
    if len(sampled) and boots:
        picks = np.concatenate(
            [np.broadcast_to(fixed, (boots, len(fixed))), rng.choice(sampled, size=(boots, len(sampled)))], axis=1
        )
        values = concept_correlations(a[picks], c[picks], draws.weight[picks])
        finite = values[np.isfinite(values)]
        if len(finite):
            low, high = (float(v) for v in np.percentile(finite, [2.5, 97.5]))
    positive = c >= 0.5
    share = float((draws.weight * positive).sum() / draws.weight.sum()) if draws.weight.sum() > 0 else float("nan")
    positives = share * probe_size
    precision = recall = f1 = iou = None
    if draws.top.any():
        k = int(draws.top.sum())
        hits = float(positive[draws.top].sum())
        precision = hits / k
        positives = max(positives, hits)  # the top images' own positives are certain
        recall = hits / positives if positives > 0 else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        iou = hits / (k + positives - hits) if k + positives - hits > 0 else 0.0
    return Scores(rho, low, high, share, precision, recall, f1, iou)
