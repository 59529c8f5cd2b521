"""Unit results from answers: every HIT task aggregates its own counted answers of the chosen units
(the describe task: UnitLabel rows, `annotator.task_kinds.describe_labels`).

Re-running is cheap and idempotent: every run recomputes the crowd's side of each result from all its
answers, and leaves a reviewer's decisions alone."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings as django_settings
from django.db.models import Q

from annotator.errors import ActionRefused
from annotator.models import Unit

METHODS = ("majority", "dawid-skene")


@dataclass(frozen=True)
class AggregationSettings:
    threshold: float
    method: str

    @classmethod
    def from_settings(cls) -> AggregationSettings:
        """The deployment's choice (UNIT_DETECTOR_THRESHOLD, AGGREGATION_METHOD), the one source of both:
        every aggregation uses it unless a command names other values."""
        return cls(threshold=django_settings.UNIT_DETECTOR_THRESHOLD, method=django_settings.AGGREGATION_METHOD)


class AggregationError(ActionRefused):
    pass


def units_aggregate(
    *,
    network: str | None = None,
    layer: str | None = None,
    unit_ids: list[int] | None = None,
    settings: AggregationSettings | None = None,
) -> int:
    """Aggregate every unit that has answers, a HIT or presence draws, within the filters; returns how many."""
    from annotator.task_kinds import tasks

    settings = settings or AggregationSettings.from_settings()
    if settings.method not in METHODS:
        raise AggregationError(f"Unknown aggregation method {settings.method!r}; use one of {', '.join(METHODS)}.")
    asked = Q(answers__isnull=False) | Q(hits__isnull=False) | Q(presence_draws__isnull=False)
    units = Unit.objects.filter(asked).distinct()
    if network:
        units = units.filter(layer__network__name=network)
    if layer:
        units = units.filter(layer__name=layer)
    if unit_ids is not None:
        units = units.filter(pk__in=unit_ids)
    ids = list(units.values_list("pk", flat=True))
    for task in tasks().values():
        task.aggregate(ids, settings)
    return len(ids)
