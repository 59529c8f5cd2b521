"""What the dashboard shows of the presence task: a unit's evaluations beyond its top images, each with
the drawn images, their weights and ratings, and what the ratings concluded (the posterior)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotator.labels import normalise
from annotator.models import HitImage, Layer, PresenceDraw, Unit, UnitEvaluation
from pipeline import presence


@dataclass(frozen=True)
class RatedDraw:
    order: int
    image: str  # the probe image's path
    picture: str  # MEDIA_ROOT-relative
    weight: float
    top: bool
    activation: float
    yes: int
    no: int
    posterior: float


@dataclass
class Evaluation:
    row: UnitEvaluation
    draws: list[RatedDraw]

    @property
    def bar(self) -> dict[str, float]:
        """Where rho and its interval lie on a 200-wide scale from -1 to 1 (the page's small figure)."""

        def x(value: float | None) -> float:
            return round(100 * (1 + max(-1.0, min(1.0, value or 0.0))), 1)

        return {"rho": x(self.row.rho), "low": x(self.row.rho_low), "high": x(self.row.rho_high)}


def unit_evaluations(unit: Unit) -> list[Evaluation]:
    """The unit's evaluations, newest campaign first."""
    from annotator.task_kinds.presence_scores import campaign_tallies

    out = []
    for row in UnitEvaluation.objects.filter(unit=unit).select_related("campaign").order_by("-campaign__created_at"):
        draws = list(
            PresenceDraw.objects.filter(campaign=row.campaign, unit=unit).select_related("image").order_by("order")
        )
        tallies, flip, _ = campaign_tallies(row.campaign_id, {d.image_id for d in draws})  # this unit's HITs only
        pictures = dict(
            HitImage.objects.filter(hit__campaign=row.campaign, image__in=[d.image_id for d in draws]).values_list(
                "image_id", "picture"
            )
        )
        key = normalise(row.label)
        rated = []
        for draw in draws:
            yes, no = tallies.get((key, draw.image_id), [0, 0])
            c = float(
                presence.posterior(np.array([yes]), np.array([no]), flip if row.flip is None else row.flip, draw.prior)[
                    0
                ]
            )
            rated.append(
                RatedDraw(
                    draw.order,
                    draw.image.path,
                    pictures.get(draw.image_id, ""),
                    draw.weight,
                    draw.top,
                    draw.activation,
                    yes,
                    no,
                    c,
                )
            )
        out.append(Evaluation(row, rated))
    return out


def layer_points(layer: Layer) -> list[dict[str, object]]:
    """The figure of paper precision against rho for a layer: one point per evaluated unit (its newest
    evaluation), with what the point links to."""
    from annotator.selectors.dashboard import latest_evaluations

    def y(value: float | None) -> float:  # rho from 1 (top, 20 px) to -1 (bottom, 220 px)
        return round(20 + (1 - max(-1.0, min(1.0, value or 0.0))) * 100, 1)

    return [
        {
            "unit_id": row.unit_id,
            "index": row.unit.index,
            "label": row.label,
            "precision": row.paper_precision,
            "rho": row.rho,
            "low": row.rho_low,
            "high": row.rho_high,
            "flagged": bool(row.flags),
            "x": round(50 + 300 * max(0.0, min(1.0, row.paper_precision or 0.0)), 1),
            "y": y(row.rho),
            "y_low": y(row.rho_low),
            "y_high": y(row.rho_high),
        }
        for row in sorted(latest_evaluations(layer).values(), key=lambda r: r.unit.index)
        if row.rho is not None and row.paper_precision is not None
    ]


def network_points(network_id: int) -> list[tuple[Layer, list[dict[str, object]]]]:
    """`layer_points` of every layer of the network that has evaluations."""
    layers = Layer.objects.filter(network_id=network_id, units__evaluations__isnull=False).distinct().order_by("order")
    return [(layer, points) for layer in layers if (points := layer_points(layer))]
