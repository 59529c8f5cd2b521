"""The presence task's unit results: one UnitEvaluation per unit and presence campaign, from the
campaign's counted answers. Each rating of a drawn image is pooled per (label, image) across the HITs
that showed it; the gold answers give the raters' flip rate; the posteriors and the unit's draws give
its scores (`pipeline.presence`). Re-running recomputes every score from all counted answers."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.conf import settings as django_settings
from django.db import transaction

from annotator.labels import normalise
from annotator.models import Answer, HitImage, PresenceDraw, UnitEvaluation, UnitLabel
from annotator.services.aggregation import AggregationSettings
from pipeline import presence

HOLDS_ONLY_AT_TOP = "holds only at the top"
MIN_RATED = 3  # drawn images with a rating before a correlation is worth stating
BOOTS = 1000


def holds_only_at_top(is_detector: bool, rho_high: float | None, threshold: float | None = None) -> bool:
    """The one rule: the paper's precision makes the unit a detector, but the whole interval of its
    correlation beyond the top images lies below the threshold (PRESENCE_RHO_THRESHOLD)."""
    limit = django_settings.PRESENCE_RHO_THRESHOLD if threshold is None else threshold
    return is_detector and rho_high is not None and rho_high < limit


def campaign_tallies(
    campaign_id: int, images: set[int] | None = None
) -> tuple[dict[tuple[str, int], list[int]], float, int]:
    """(normalised label, image id) -> [yes, no] of the counted answers' non-gold ratings; the flip rate
    from their gold answers; how many ratings there are. With `images`, only the HITs showing them are
    read (one unit's page; the flip rate is then that of those HITs' gold only)."""
    where = HitImage.objects.filter(hit__campaign_id=campaign_id)
    if images is not None:
        where = HitImage.objects.filter(hit__in=where.filter(image_id__in=images).values("hit_id"))
    slots = {
        (hit_id, position): (normalise(label), image_id, gold, truth)
        for hit_id, position, label, image_id, gold, truth in where.values_list(
            "hit_id", "position", "hit__label", "image_id", "gold", "truth"
        )
    }
    tallies: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    right = wrong = ratings = 0
    hits = {hit_id for hit_id, _ in slots}
    for hit_id, answer in Answer.objects.filter(hit_id__in=hits, counts=True).values_list("hit_id", "ratings"):
        for position, says in (answer or {}).items():
            slot = slots.get((hit_id, int(position)))
            if slot is None:
                continue
            label, image_id, gold, truth = slot
            if gold:
                if truth is not None:
                    right, wrong = right + (bool(says) == truth), wrong + (bool(says) != truth)
                continue
            tallies[(label, image_id)][0 if says else 1] += 1
            ratings += 1
    return tallies, presence.flip_rate(right, wrong), ratings


def evaluations_aggregate(unit_ids: list[int], settings: AggregationSettings) -> None:
    """Every presence campaign's evaluation of these units, from all its counted answers."""
    draws: dict[tuple[int, int], list[PresenceDraw]] = defaultdict(list)
    for draw in PresenceDraw.objects.filter(unit_id__in=unit_ids).select_related("campaign").order_by("order"):
        draws[(draw.campaign_id, draw.unit_id)].append(draw)
    if not draws:
        return
    labels = {label.unit_id: label for label in UnitLabel.objects.filter(unit_id__in={u for _, u in draws})}
    tallies_of = {c: campaign_tallies(c) for c in {c for c, _ in draws}}
    rows = []
    for (campaign_id, unit_id), unit_draws in sorted(draws.items()):
        tallies, flip, _ = tallies_of[campaign_id]
        campaign = unit_draws[0].campaign
        key = normalise(unit_draws[0].label)
        counts = np.asarray([tallies.get((key, d.image_id), [0, 0]) for d in unit_draws], dtype=float)
        rated = counts.sum(axis=1) > 0
        label = labels.get(unit_id)
        row = UnitEvaluation(
            unit_id=unit_id,
            campaign_id=campaign_id,
            label=unit_draws[0].label,
            paper_precision=label.precision if label else None,
            images=int(rated.sum()),
            ratings=int(counts.sum()),
            flip=flip,
            flags=[],
        )
        if rated.sum() >= MIN_RATED:
            kept = [d for d, r in zip(unit_draws, rated, strict=True) if r]
            c = presence.posterior(counts[rated, 0], counts[rated, 1], flip, np.asarray([d.prior for d in kept]))
            sample = presence.Draws(
                np.asarray([d.image_id for d in kept]),
                np.asarray([d.weight for d in kept]),
                np.asarray([d.top for d in kept]),
            )
            rng = np.random.default_rng(unit_id)
            scores = presence.unit_scores(
                np.asarray([d.activation for d in kept]),
                c,
                sample,
                int(campaign.task_settings.get("probe_size", 0)),
                rng,
                BOOTS,
            )
            for name in ("rho", "rho_low", "rho_high", "base_rate", "precision", "recall", "f1", "iou"):
                value = getattr(scores, name)
                setattr(row, name, None if value is None or not np.isfinite(value) else float(value))
            if holds_only_at_top(bool(label and label.is_detector), row.rho_high):
                row.flags = [HOLDS_ONLY_AT_TOP]
        rows.append(row)
    fields = [f.name for f in UnitEvaluation._meta.concrete_fields if f.name not in ("id", "unit", "campaign")]
    with transaction.atomic():
        UnitEvaluation.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["unit", "campaign"], update_fields=fields, batch_size=1000
        )
