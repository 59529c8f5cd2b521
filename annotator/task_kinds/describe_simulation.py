"""The describe task's simulated crowd: what each HIT's highlighted regions really show (the demo
world's per-pixel truth, `pipeline.crowd`), the answer a simulated worker posts, and how near the
aggregated labels came to the truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from annotator.errors import ActionRefused
from annotator.labels import normalise
from annotator.models import Campaign, HitImage, TopImage, UnitLabel
from annotator.services import artifacts
from annotator.services.aggregation import METHODS, AggregationError, AggregationSettings, units_aggregate
from annotator.task_kinds.base import Simulation
from pipeline import crowd, demo_world


@dataclass
class HitTruth:
    truth: crowd.UnitTruth
    own: list[int]  # slot positions of the unit's images, in the order of truth.matches
    gold: list[int]


def world_truth(root: Path) -> dict[str, np.ndarray]:
    """The demo world's per-pixel truth of an image set (`manage.py demo_world` writes it beside the
    images); a campaign on other images has none to simulate from."""
    truth_file = root.parent / "truth.npz"
    if not truth_file.is_file():
        raise ActionRefused(
            f"The simulated crowd needs the demo world's truth, {truth_file}; this campaign's images "
            "do not come from `manage.py demo_world`."
        )
    return demo_world.load_truth(root.parent)


def campaign_truth(campaign: Campaign) -> dict[int, HitTruth]:
    """Per HIT, what its unit's highlighted regions show, from the demo world's per-pixel truth."""
    slots = [
        (slot, slot.top_image)
        for slot in HitImage.objects.filter(hit__campaign=campaign, top_image__isnull=False)
        .select_related("top_image__image__image_set", "top_image__segmentation")
        .order_by("hit_id", "position")
        if slot.top_image is not None
    ]
    if not slots:
        raise ActionRefused(f"Campaign {campaign.name!r} has no HITs.")
    world = world_truth(Path(slots[0][1].image.image_set.root))
    index = {name: i for i, name in enumerate(world["names"].tolist())}
    size = world["truth"].shape[-1]
    by_hit: dict[int, list[tuple[HitImage, TopImage]]] = {}
    for slot, top in slots:
        by_hit.setdefault(slot.hit_id, []).append((slot, top))
    out = {}
    for hit_id, hit_slots in by_hit.items():
        own = [(s, top) for s, top in hit_slots if not s.gold]
        rows = [index[top.image.path] for _, top in own]
        masks = [_mask(top.segmentation.mask_path, size) for _, top in own]
        concepts = crowd.concept_masks(world["truth"][rows])
        out[hit_id] = HitTruth(
            crowd.unit_truth(masks, concepts),
            [s.position for s, _ in own],
            [s.position for s, _ in hit_slots if s.gold],
        )
    return out


def _mask(relative: str, size: int) -> np.ndarray:
    picture = artifacts.read_picture(relative).convert("L")
    if picture.size != (size, size):
        picture = picture.resize((size, size), PILImage.Resampling.NEAREST)
    return np.asarray(picture) > 127


class DescribeSimulation(Simulation):
    def __init__(self, campaign: Campaign) -> None:
        self.truths = campaign_truth(campaign)

    def fields(self, worker: crowd.SimulatedWorker, hit_id: int, attempt: int) -> list[tuple[str, str]]:
        truth = self.truths[hit_id]
        answer = worker.answer(truth.truth, truth.own, truth.gold, attempt)
        return [("description", answer.description), ("category", answer.category)] + [
            ("mismatch", str(p)) for p in answer.marked
        ]

    def scores(self, campaign: Campaign) -> dict[str, dict[str, float]]:
        """Label accuracy, category accuracy and mean precision error of each aggregation method against
        the truth; the deployment's own method runs last, so its labels are the ones stored."""
        hits = dict(campaign.hits.values_list("pk", "unit_id"))
        unit_ids = list(hits.values())
        scores = {}
        default = AggregationSettings.from_settings()
        for method in [m for m in METHODS if m != default.method] + [default.method]:
            try:
                units_aggregate(unit_ids=unit_ids, settings=AggregationSettings(default.threshold, method))
            except AggregationError:
                continue
            labels = {label.unit_id: label for label in UnitLabel.objects.filter(unit_id__in=unit_ids)}
            done = [(self.truths[h], labels[u]) for h, u in hits.items() if u in labels and labels[u].answers]
            if not done:
                continue
            scores[method] = {
                "units": len(done),
                "label_accuracy": sum(normalise(lab.label) == normalise(t.truth.concept) for t, lab in done)
                / len(done),
                "category_accuracy": sum(lab.category == t.truth.category for t, lab in done) / len(done),
                "precision_error": sum(abs((lab.precision or 0) - t.truth.precision) for t, lab in done) / len(done),
            }
        return scores

    def summary(self, scores: dict[str, dict[str, Any]]) -> list[str]:
        return [
            f"  {method:12s} label accuracy {score['label_accuracy']:.3f}, category accuracy "
            f"{score['category_accuracy']:.3f}, mean precision error {score['precision_error']:.3f} "
            f"({score['units']} units)"
            for method, score in scores.items()
        ]
