"""The describe task's unit results: UnitLabel rows from its counted answers by
`annotator.labels.aggregate`, each stored with the threshold and the method that made it.

Re-running is cheap and idempotent: every run recomputes the crowd's side of each label from all its
answers, and leaves a reviewer's decisions alone."""

from __future__ import annotations

import warnings
from collections import defaultdict

from django.db import transaction
from django.db.models import Max, Q

from annotator.labels import Vote, aggregate
from annotator.models import Answer, Hit, UnitLabel
from annotator.services.aggregation import AggregationError, AggregationSettings

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
    "threshold",
    "method",
]


def labels_aggregate(task: str, ids: list[int], settings: AggregationSettings) -> None:
    """The units' labels from the answers that count: those of the task's campaigns, and imported ones."""
    votes: dict[int, list[Vote]] = defaultdict(list)
    mine = Q(hit=None) | Q(hit__campaign__task=task)
    table = list(
        Answer.objects.filter(mine, unit_id__in=ids, counts=True, precision__isnull=False)
        .order_by("id")
        .values_list("id", "unit_id", "worker_id", "description", "category", "precision")
    )
    for _, unit_id, _, description, category, precision in table:
        votes[unit_id].append(Vote(description, category, precision or 0.0))
    needed = dict(
        Hit.objects.filter(unit_id__in=ids, campaign__task=task)
        .values("unit_id")
        .annotate(n=Max(Hit.answers_wanted_expression()))
        .values_list("unit_id", "n")
    )
    chosen = _dawid_skene(table) if settings.method == "dawid-skene" else {}
    existing = {label.unit_id: label for label in UnitLabel.objects.filter(unit_id__in=ids)}
    new: list[UnitLabel] = []
    changed: list[UnitLabel] = []
    for unit_id in ids:
        unit_votes = votes.get(unit_id, [])
        result = aggregate(
            unit_votes, needed.get(unit_id, len(unit_votes)), settings.threshold, category=chosen.get(unit_id)
        )
        label = existing.get(unit_id) or UnitLabel(unit_id=unit_id)
        for name in CROWD_FIELDS[:-2]:
            setattr(label, name, getattr(result, name))
        label.threshold, label.method = settings.threshold, settings.method
        (changed if label.pk else new).append(label)
    with transaction.atomic():
        UnitLabel.objects.bulk_create(new, batch_size=1000)
        UnitLabel.objects.bulk_update(changed, CROWD_FIELDS, batch_size=1000)


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
