"""The presence task's simulated crowd: whether each asked label is really in each image (the demo
world's truth, `pipeline.crowd.presence_truth`), the Yes / No a simulated rater posts (the truth, flipped
with the worker's noise; a spammer answers at random), and how near the scores came to the correlation
computed from the world's full truth over the whole probe set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from annotator.errors import ActionRefused
from annotator.labels import normalise
from annotator.models import Campaign, HitImage, Image, Network, PresenceDraw, UnitEvaluation
from annotator.services.aggregation import AggregationSettings, units_aggregate
from annotator.services.probe import probe_scores
from annotator.task_kinds.base import Simulation
from annotator.task_kinds.describe_simulation import world_truth
from pipeline import crowd, demo_world, presence


def _world_of(network: Network) -> tuple[dict[str, np.ndarray], dict[str, int]] | None:
    dissection = getattr(network, "dissection", None)
    if dissection is None:
        return None
    try:
        world = world_truth(Path(dissection.image_set.root))
    except ActionRefused:
        return None
    return world, {name: i for i, name in enumerate(world["names"].tolist())}


def label_truth(network: Network, ids: np.ndarray, labels: set[str]) -> dict[str, np.ndarray]:
    """normalised label -> whether it is in each of the images `ids` (the demo world's truth); empty
    where the network's images are not the demo world's."""
    found = _world_of(network)
    if found is None:
        return {}
    world, row = found
    paths = dict(Image.objects.filter(pk__in=[int(i) for i in ids]).values_list("pk", "path"))
    rows = np.asarray([row[paths[int(i)]] for i in ids])
    concepts = {normalise(name): name for name in demo_world.VOCAB}
    return {label: crowd.presence_truth(world, concepts.get(label, label))[rows] for label in labels}


def true_correlations(campaign: Campaign) -> dict[int, float]:
    """unit id -> the plain correlation, over every probe image, between the unit's activation and
    whether its label is in the image (what the ratings estimate)."""
    units = {}
    for unit_id, label, layer_id, index in (
        PresenceDraw.objects.filter(campaign=campaign)
        .values_list("unit_id", "label", "unit__layer_id", "unit__index")
        .distinct()
    ):
        units[unit_id] = (normalise(label), layer_id, index)
    dissection = campaign.network.dissection
    out = {}
    for layer in dissection.network.layers.filter(pk__in={v[1] for v in units.values()}):
        mine = [(u, v) for u, v in units.items() if v[1] == layer.pk]
        ids, scores = probe_scores(
            dissection, layer, [v[2] for _, v in mine], campaign.task_settings.get("score", "max")
        )
        truth = label_truth(campaign.network, ids, {v[0] for _, v in mine})
        if not truth:
            raise ActionRefused(f"Campaign {campaign.name!r} is not over the demo world's images: no truth to score.")
        for j, (unit_id, (label, _, _)) in enumerate(mine):
            out[unit_id] = presence.weighted_correlation(
                presence.standardise(scores[:, j]), truth[label].astype(float), np.ones(len(ids))
            )
    return out


def relative_errors(estimates: dict[int, float], truth: dict[int, float]) -> list[float]:
    """|rho_hat - rho| / |rho| of each unit with both (a unit whose true rho is 0 has no relative error)."""
    return [
        abs(estimates[u] - truth[u]) / abs(truth[u])
        for u in estimates
        if u in truth and np.isfinite(estimates[u]) and np.isfinite(truth[u]) and truth[u] != 0
    ]


class PresenceSimulation(Simulation):
    def __init__(self, campaign: Campaign) -> None:
        slots = list(
            HitImage.objects.filter(hit__campaign=campaign)
            .order_by("hit_id", "position")
            .values_list("hit_id", "position", "image_id", "gold", "truth", "hit__label")
        )
        if not slots:
            raise ActionRefused(f"Campaign {campaign.name!r} has no HITs.")
        ids = np.asarray(sorted({s[2] for s in slots}))
        labels = {normalise(s[5]) for s in slots}
        truth = label_truth(campaign.network, ids, labels)
        if not truth:
            raise ActionRefused(
                f"The simulated crowd needs the demo world's truth; campaign {campaign.name!r}'s images do not "
                "come from `manage.py demo_world`."
            )
        column = {int(image_id): i for i, image_id in enumerate(ids)}
        self.truth: dict[int, list[tuple[int, bool]]] = {}
        for hit_id, position, image_id, gold, known, label in slots:
            value = bool(known) if gold and known is not None else bool(truth[normalise(label)][column[image_id]])
            self.truth.setdefault(hit_id, []).append((position, value))

    def fields(self, worker: crowd.SimulatedWorker, hit_id: int, attempt: int) -> list[tuple[str, str]]:
        out = []
        for position, present in self.truth[hit_id]:
            if worker.spammer:
                says = bool(worker.rng.random() < 0.5)
            else:
                says = present != bool(worker.rng.random() < worker.noise)
            out.append((f"image-{position}", "yes" if says else "no"))
        return out

    def scores(self, campaign: Campaign) -> dict[str, dict[str, float]]:
        unit_ids = sorted(set(PresenceDraw.objects.filter(campaign=campaign).values_list("unit_id", flat=True)))
        units_aggregate(unit_ids=unit_ids, settings=AggregationSettings.from_settings())
        found = UnitEvaluation.objects.filter(campaign=campaign, rho__isnull=False).values_list(
            "unit_id", "rho", "flip"
        )
        estimates = {u: float(rho) for u, rho, _ in found if rho is not None}
        errors = relative_errors(estimates, true_correlations(campaign))
        flips = [flip for _, _, flip in found if flip is not None]
        return {
            "presence": {
                "units": len(errors),
                "median_relative_error": float(np.median(errors)) if errors else float("nan"),
                "flip": flips[0] if flips else float("nan"),
            }
        }

    def summary(self, scores: dict[str, dict[str, Any]]) -> list[str]:
        score = scores.get("presence", {})
        return [
            f"  correlation beyond the top images: median relative error |rho_hat - rho| / |rho| "
            f"{score.get('median_relative_error', float('nan')):.3f} over {score.get('units', 0)} units "
            f"(flip rate from gold {score.get('flip', float('nan')):.3f})"
        ]
