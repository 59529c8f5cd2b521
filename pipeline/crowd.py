"""A simulated crowd for the demo world: what a unit's highlighted regions really show (from the
per-pixel truth), and how honest, noisy and spamming workers answer a HIT about it. No Django: the
annotator's `simulate_crowd` command feeds it masks and plays its answers through the real HIT form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline import demo_world

MATCH_SHARE = 0.25  # an image shows the concept when it covers this share of the highlighted pixels
PHRASINGS = ("{}", "{}s", "{}", "a bunch of {}s", "{}", "{}!", "{} ")
CATEGORIES = ("scene", "object", "region", "part", "texture", "color")


@dataclass(frozen=True)
class UnitTruth:
    concept: str
    category: str
    matches: tuple[bool, ...]  # per top image, in the order given

    @property
    def precision(self) -> float:
        return sum(self.matches) / len(self.matches) if self.matches else 0.0


def concept_masks(truth: np.ndarray) -> dict[str, np.ndarray]:
    """concept -> N x H x W booleans, for every concept of the demo world's truth layers."""
    out = {}
    for name, entry in demo_world.VOCAB.items():
        if entry["layer"] in demo_world.TRUTH_LAYERS:
            out[name] = truth[:, demo_world.TRUTH_LAYERS.index(entry["layer"])] == entry["id"]
    return out


def unit_truth(masks: Sequence[np.ndarray], image_truth: dict[str, np.ndarray]) -> UnitTruth:
    """The concept covering most of the unit's highlighted pixels over all its images, and for each
    image whether it covers at least MATCH_SHARE of that image's highlighted pixels.

    `masks[i]` and `image_truth[c][i]` are the i-th top image's mask and the concept's truth there."""
    highlighted = sum(float(m.sum()) for m in masks) or 1.0
    share = {c: sum(float((m & t[i]).sum()) for i, m in enumerate(masks)) / highlighted for c, t in image_truth.items()}
    concept = max(share, key=lambda c: (share[c], c))
    matches = tuple(
        bool(m.sum()) and float((m & image_truth[concept][i]).sum()) / float(m.sum()) >= MATCH_SHARE
        for i, m in enumerate(masks)
    )
    return UnitTruth(concept, str(demo_world.VOCAB[concept]["category"]), matches)


@dataclass(frozen=True)
class WorkerAnswer:
    description: str
    category: str
    marked: list[int]  # slot positions


@dataclass
class SimulatedWorker:
    """An honest worker who errs with probability `noise`, or a spammer who answers at random."""

    name: str
    spammer: bool
    noise: float
    rng: np.random.Generator

    def answer(self, truth: UnitTruth, own: Sequence[int], gold: Sequence[int], attempt: int = 0) -> WorkerAnswer:
        """`own[i]` is the slot of the unit's i-th image (truth.matches[i]); `gold` the gold slots.
        A warning about gold (attempt > 0) makes an honest worker look again and mark every gold image."""
        concepts = sorted(c for c, e in demo_world.VOCAB.items() if e["layer"] in demo_world.TRUTH_LAYERS)
        if self.spammer:
            marked = [p for p in [*own, *gold] if self.rng.random() < 0.3]
            return WorkerAnswer(str(self.rng.choice(concepts)), str(self.rng.choice(CATEGORIES)), sorted(marked))
        concept = truth.concept if self.rng.random() >= self.noise else str(self.rng.choice(concepts))
        description = str(self.rng.choice(PHRASINGS)).format(concept)
        category = truth.category if self.rng.random() >= self.noise else str(self.rng.choice(CATEGORIES))
        flips = self.rng.random(len(own)) < self.noise
        marked = [p for p, match, flip in zip(own, truth.matches, flips, strict=True) if (not match) ^ flip]
        marked += [p for p in gold if attempt > 0 or self.rng.random() >= self.noise]
        return WorkerAnswer(description, category, sorted(marked))


def presence_truth(world: dict[str, np.ndarray], concept: str) -> np.ndarray:
    """Per image of the demo world (in `names` order), whether `concept` is in it: a pixel of it in its
    truth layer, or the image's scene. A word the world has no concept for is in no image."""
    entry = demo_world.VOCAB.get(concept)
    if entry is None:
        return np.zeros(len(world["names"]), dtype=bool)
    if entry["layer"] == "scene":
        return world["scene"] == int(entry["id"]) - 1  # type: ignore[call-overload]  # ids are ints
    layer = demo_world.TRUTH_LAYERS.index(str(entry["layer"]))
    return (world["truth"][:, layer] == entry["id"]).any(axis=(1, 2))
