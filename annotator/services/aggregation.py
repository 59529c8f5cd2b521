"""Unit labels from answers: writes UnitLabel rows with `annotator.labels.aggregate`.

Re-running is cheap and idempotent: every run recomputes the crowd's side of each label from all
its answers, and leaves a reviewer's decisions alone."""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Max, Q

from annotator.labels import Vote, aggregate
from annotator.models import Answer, Hit, Unit, UnitLabel

log = logging.getLogger(__name__)
METHODS = ("majority", "dawid-skene")
CROWD_FIELDS = [
    "label",
    "category",
    "precision",
    "status",
    "answers",
    "answers_needed",
    "label_agreement",
    "category_agreement",
    "flags",
]


@dataclass(frozen=True)
class AggregationSettings:
    threshold: float
    method: str

    @classmethod
    def from_settings(cls) -> AggregationSettings:
        """The deployment's choice (UNIT_DETECTOR_THRESHOLD, AGGREGATION_METHOD), the one source of both:
        every aggregation uses it unless a command names other values."""
        return cls(threshold=django_settings.UNIT_DETECTOR_THRESHOLD, method=django_settings.AGGREGATION_METHOD)


class AggregationError(Exception):
    pass


def units_aggregate(
    *,
    network: str | None = None,
    layer: str | None = None,
    unit_ids: list[int] | None = None,
    settings: AggregationSettings | None = None,
) -> int:
    """Aggregate every unit that has answers or a HIT, within the filters; returns how many."""
    settings = settings or AggregationSettings.from_settings()
    if settings.method not in METHODS:
        raise AggregationError(f"Unknown aggregation method {settings.method!r}; use one of {', '.join(METHODS)}.")
    units = Unit.objects.filter(Q(answers__isnull=False) | Q(hits__isnull=False)).distinct()
    if network:
        units = units.filter(layer__network__name=network)
    if layer:
        units = units.filter(layer__name=layer)
    if unit_ids is not None:
        units = units.filter(pk__in=unit_ids)
    ids = list(units.values_list("pk", flat=True))
    votes: dict[int, list[Vote]] = defaultdict(list)
    rows = (
        Answer.objects.filter(unit_id__in=ids, counts=True)
        .order_by("id")
        .values_list("id", "unit_id", "worker_id", "description", "category", "precision")
    )
    table = list(rows)
    for _, unit_id, _, description, category, precision in table:
        votes[unit_id].append(Vote(description, category, precision))
    needed = dict(
        Hit.objects.filter(unit_id__in=ids)
        .values("unit_id")
        .annotate(n=Max(Hit.answers_wanted_expression()))
        .values_list("unit_id", "n")
    )
    chosen = _dawid_skene(table) if settings.method == "dawid-skene" else {}
    existing = {label.unit_id: label for label in UnitLabel.objects.filter(unit_id__in=ids)}
    new, changed = [], []
    for unit_id in ids:
        unit_votes = votes.get(unit_id, [])
        result = aggregate(
            unit_votes, needed.get(unit_id, len(unit_votes)), settings.threshold, category=chosen.get(unit_id)
        )
        label = existing.get(unit_id) or UnitLabel(unit_id=unit_id)
        for name in CROWD_FIELDS:
            setattr(label, name, getattr(result, name))
        (changed if label.pk else new).append(label)
    with transaction.atomic():
        UnitLabel.objects.bulk_create(new, batch_size=1000)
        UnitLabel.objects.bulk_update(changed, CROWD_FIELDS, batch_size=1000)
    return len(ids)


def _dawid_skene(table: list[tuple]) -> dict[int, str]:
    """Category per unit by Dawid and Skene's worker-confusion model (crowd-kit's implementation): it
    learns each worker's confusions, so it needs to know who answered what."""
    if not table:
        return {}
    if any(row[2] is None for row in table):
        raise AggregationError(
            "Dawid-Skene weighs workers, but some answers have no worker (the authors' wide "
            "CSV has none): use --method majority for them."
        )
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    frame = pd.DataFrame(
        {"task": [row[1] for row in table], "worker": [row[2] for row in table], "label": [row[4] for row in table]}
    )
    with warnings.catch_warnings():  # crowd-kit 1.4 uses pandas keywords that pandas 3 deprecates
        warnings.simplefilter("ignore")
        return DawidSkene(n_iter=100).fit_predict(frame).to_dict()
