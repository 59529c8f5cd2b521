"""Reads: what views, commands and exports show, each in a bounded number of queries."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotator.crowds import CampaignMoney, crowd_for, pool_platforms, synced_platforms
from annotator.models import (
    Answer,
    Assignment,
    Campaign,
    Category,
    Dissection,
    Hit,
    HitImage,
    Image,
    Layer,
    TopImage,
    Unit,
    UnitEvaluation,
    UnitLabel,
    Worker,
)


@dataclass
class StageProgress:
    name: str
    done: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 100.0


def units_with_top_images(dissection: Dissection) -> QuerySet[Unit]:
    """The units a dissection segments: those with at least one readable top image."""
    return Unit.objects.filter(layer__network_id=dissection.network_id, top_images__rank=0)


def dissection_progress(dissection: Dissection) -> list[StageProgress]:
    """Done and total of each stage, for `dissect --status` and the dashboard."""
    chunks = dissection.chunks.aggregate(total=Count("id"), done=Count("id", filter=Q(done=True)))
    images_done = dissection.chunks.filter(done=True).values_list("image_count", flat=True)
    sweeps = dissection.sweeps.aggregate(total=Count("id"), done=Count("id", filter=Q(done=True)))
    units = units_with_top_images(dissection).aggregate(
        total=Count("id"), done=Count("id", filter=Q(receptive_field__isnull=False))
    )
    stages = [
        StageProgress("images through the network", sum(images_done), dissection.image_count),
        StageProgress("activation chunks", chunks["done"], chunks["total"]),
    ]
    from annotator.services.tally_stages import tally_progress

    stages.append(StageProgress("IoU tally chunks", *(tally_progress(dissection) or (0, 0))))  # 0 / 0: no probe set
    return [
        *stages,
        StageProgress("occlusion sweeps", sweeps["done"], sweeps["total"]),
        StageProgress("units segmented", units["done"], units["total"]),
    ]


def unreadable_images(dissection: Dissection) -> QuerySet[Image]:
    return dissection.image_set.images.filter(status=Image.Status.UNREADABLE).order_by("path")


def units_for_export(network: str | None = None, layer: str | None = None) -> QuerySet[Unit]:
    """Units with their layer, network, RF, label, ranked top images, answers and evaluations beyond the
    top images, prefetched in a few queries."""
    units = Unit.objects.select_related("layer__network", "receptive_field", "label").order_by(
        "layer__network__name", "layer__order", "index"
    )
    if network:
        units = units.filter(layer__network__name=network)
    if layer:
        units = units.filter(layer__name=layer)
    return units.prefetch_related(
        Prefetch("top_images", queryset=TopImage.objects.select_related("image").order_by("rank")),
        Prefetch("answers", queryset=Answer.objects.select_related("worker", "hit__campaign").order_by("id")),
        "auto_labels",
        Prefetch(
            "evaluations",
            queryset=UnitEvaluation.objects.select_related("campaign").order_by("campaign__created_at", "campaign_id"),
        ),
    )


# Annotation reads ---------------------------------------------------------------------------------


def hit_by_key(key) -> Hit | None:
    return Hit.objects.select_related("campaign").filter(key=key).first()


def hit_slots(hit: Hit) -> list[HitImage]:
    """The HIT's image slots in order; the page needs only their positions (images load by position)."""
    return list(HitImage.objects.filter(hit=hit).only("id", "position", "gold").order_by("position"))


def hit_slot_file(key: str, position: int) -> str | None:
    """MEDIA_ROOT-relative path of the picture in one slot: a segmentation's rendering, or the slot's own
    picture (a presence HIT's whole image). The URL never names the unit."""
    found = (
        HitImage.objects.filter(hit__key=key, position=position)
        .values_list("picture", "top_image__segmentation__rendered_path")
        .first()
    )
    return None if found is None else (found[0] or found[1])


def worker_open_assignment(
    worker: Worker, now: datetime | None = None, campaign: Campaign | None = None
) -> Assignment | None:
    """The worker's oldest unexpired open assignment of the pool's HITs (or of one campaign's, for a crowd's
    participant): what "next HIT" hands back first."""
    now = now or timezone.now()
    where = Q(hit__campaign=campaign) if campaign is not None else Q(hit__campaign__platform__in=pool_platforms())
    return (
        Assignment.objects.filter(where, worker=worker, status=Assignment.Status.OPEN)
        .filter(Q(expires_at=None) | Q(expires_at__gte=now))
        .select_related("hit")
        .order_by("opened_at")
        .first()
    )


def hits_available(*, worker: Worker | None = None, campaign: Campaign | None = None) -> QuerySet[Hit]:
    """Published HITs of the pool (or one campaign's, for a crowd's participants) with a free answer slot
    and, for a worker, of units they never had."""
    taken = (
        Assignment.objects.filter(hit=OuterRef("pk"))
        .exclude(slot=None)
        .order_by()
        .values("hit")
        .annotate(n=Count("id"))
        .values("n")
    )
    where = Q(campaign=campaign) if campaign is not None else Q(campaign__platform__in=pool_platforms())
    hits = (
        Hit.objects.filter(where, campaign__status=Campaign.Status.PUBLISHED)
        .annotate(taken=Coalesce(Subquery(taken), 0))
        .filter(taken__lt=Hit.answers_wanted_expression())
    )
    if worker is not None:
        # never the same HIT twice, nor a second HIT of a unit they described (a presence HIT has no unit)
        had = Assignment.objects.filter(Q(hit=OuterRef("pk")) | Q(hit__unit=OuterRef("unit")), worker=worker).exclude(
            status=Assignment.Status.ABANDONED
        )
        hits = hits.filter(~Exists(had))
    return hits.select_related("campaign").order_by("-taken", "id")


def campaigns_to_sync() -> list[Campaign]:
    """Published campaigns on a platform that syncs (the periodic task, `sync` without names)."""
    return list(
        Campaign.objects.filter(platform__in=synced_platforms(), status=Campaign.Status.PUBLISHED).order_by("name")
    )


def worker_answer_count(worker: Worker) -> int:
    return Answer.objects.filter(worker=worker).count()


def campaign_counts(campaign: Campaign) -> dict[str, int]:
    """HITs, complete HITs, answers that count and answers needed, open assignments, and the answers
    kept but not counted (unconfirmed by the platform, unknown to it, rejected, late, beyond what a HIT wanted)."""
    counted = (
        Answer.objects.filter(hit=OuterRef("pk"), counts=True)
        .order_by()
        .values("hit")
        .annotate(n=Count("id"))
        .values("n")
    )
    hits = campaign.hits.annotate(n=Subquery(counted), wanted=Hit.answers_wanted_expression()).aggregate(
        hits=Count("id"), complete=Count("id", filter=Q(n__gte=F("wanted"))), answers=Sum("n"), needed=Sum("wanted")
    )
    kept = Answer.objects.filter(hit__campaign=campaign, counts=False).aggregate(
        unconfirmed=Count("id", filter=Q(confirmation=Answer.Confirmation.UNCONFIRMED)),
        excluded=Count("id", filter=~Q(confirmation=Answer.Confirmation.UNCONFIRMED)),
    )
    open_now = (
        Assignment.objects.filter(hit__campaign=campaign, status=Assignment.Status.OPEN)
        .filter(Q(expires_at=None) | Q(expires_at__gte=timezone.now()))
        .count()
    )
    return {
        "hits": hits["hits"],
        "complete": hits["complete"],
        "answers": hits["answers"] or 0,
        "needed": hits["needed"] or 0,
        "open": open_now,
        **kept,
    }


@dataclass
class CampaignProgress:
    """How far a campaign is, and what it cost: what the dashboard, the admin and `sync` show."""

    counts: dict[str, int]
    money: CampaignMoney
    rejected: int

    @property
    def percent(self) -> float:
        counts = self.counts
        return 100.0 * min(counts["answers"], counts["needed"]) / counts["needed"] if counts["needed"] else 0.0

    def summary(self) -> str:
        c, m = self.counts, self.money
        return (
            f"{c['complete']}/{c['hits']} HITs done, {c['answers']}/{c['needed']} answers, {m.approved} approved, "
            f"{self.rejected} rejected; ${m.spent} spent, ${m.owed} owed."
        )


def campaign_progress(campaign: Campaign) -> CampaignProgress:
    counts = campaign_counts(campaign)
    rejected = Answer.objects.filter(hit__campaign=campaign, review=Answer.Review.REJECTED).count()
    return CampaignProgress(counts, crowd_for(campaign).money(campaign), rejected)


@dataclass
class LayerSummary:
    """The paper's per-layer figures: type shares of all answers, detectors, agreement."""

    network: str
    layer: str
    units: int
    answers: int
    type_shares: dict[str, float]
    detectors: int
    object_detectors: int
    pending: int
    needs_review: int
    alpha: float | None
    aggregations: list[tuple[float | None, str]] = field(default_factory=list)  # (threshold, method) stored

    @property
    def aggregation_text(self) -> str:
        """How the stored statuses were reached: the threshold and method aggregation used (several where
        the labels were aggregated at different times with different settings)."""
        parts = [f"precision \u2265 {t:g}, {m}" if t is not None else m or "?" for t, m in self.aggregations]
        return "; ".join(parts)

    @property
    def alpha_text(self) -> str:
        return "n/a" if self.alpha is None else f"{self.alpha:.3f}"


def is_object_detector(label: UnitLabel) -> bool:
    """A detector whose category is `object` by a reviewer's word or by a majority of its answers."""
    return (
        label.is_detector
        and label.final_category == Category.OBJECT
        and bool(label.review_category or (label.category_agreement or 0) > 0.5)
    )


def layer_summaries(network: str | None = None, layer: str | None = None) -> list[LayerSummary]:
    """One row per layer with counted answers: type shares of those answers, detectors (by the stored
    status, which aggregation set with the deployment's threshold), object detectors."""
    layers = Layer.objects.select_related("network").filter(units__answers__counts=True).distinct()
    if network:
        layers = layers.filter(network__name=network)
    if layer:
        layers = layers.filter(name=layer)
    rows = []
    for row in layers.order_by("network__name", "order", "id"):
        answers = list(Answer.objects.filter(unit__layer=row, counts=True).values_list("unit_id", "category"))
        counts = {value: 0 for value in Category.values}
        for _, category in answers:
            counts[category] += 1
        labels = list(UnitLabel.objects.filter(unit__layer=row))
        rows.append(
            LayerSummary(
                network=row.network.name,
                layer=row.name,
                units=len(labels),
                answers=len(answers),
                type_shares={name: counts[name] / len(answers) for name in Category.values} if answers else {},
                detectors=sum(label.is_detector for label in labels),
                object_detectors=sum(is_object_detector(label) for label in labels),
                pending=sum(label.status == UnitLabel.Status.PENDING for label in labels),
                needs_review=sum(label.final_status == UnitLabel.Status.NEEDS_REVIEW for label in labels),
                alpha=category_alpha(answers),
            )
        )
    return rows


def object_detector_labels(network: str, layer: str | None = None) -> list[str]:
    """The label of every object detector: the histogram of the paper's second figure."""
    labels = UnitLabel.objects.filter(unit__layer__network__name=network)
    if layer:
        labels = labels.filter(unit__layer__name=layer)
    return [label.final_label for label in labels if is_object_detector(label)]


@dataclass(frozen=True)
class LabelBar:
    """One bar of a layer's object-detector histogram: the label, its units, and its share of the
    layer's largest bar (the bar's drawn length)."""

    label: str
    units: int
    share: float


def object_detector_histogram(network: str) -> list[tuple[Layer, list[LabelBar]]]:
    """The second figure of the paper per layer, as data the dashboard draws with a link per bar: the
    labels of the layer's object detectors, most frequent first (ties by label)."""
    per_layer: dict[int, Counter] = {}
    layers = {layer.pk: layer for layer in Layer.objects.filter(network__name=network).order_by("id")}
    for label in UnitLabel.objects.filter(unit__layer__in=layers).select_related("unit"):
        if is_object_detector(label):
            per_layer.setdefault(label.unit.layer_id, Counter())[label.final_label] += 1
    histogram = []
    for layer_id, layer in layers.items():
        counts = sorted(per_layer.get(layer_id, Counter()).items(), key=lambda item: (-item[1], item[0]))
        if counts:
            most = counts[0][1]
            histogram.append((layer, [LabelBar(label=name, units=n, share=n / most) for name, n in counts]))
    return histogram


def category_alpha(answers: list[tuple[int, str]]) -> float | None:
    """Krippendorff's alpha (nominal) of the category answers, units as items: how far annotators
    agree beyond chance. None when there is nothing to compare."""
    import krippendorff
    import numpy as np

    per_unit: dict[int, list[str]] = {}
    for unit_id, category in answers:
        per_unit.setdefault(unit_id, []).append(category)
    per_unit = {u: c for u, c in per_unit.items() if len(c) > 1}
    values = sorted({c for cats in per_unit.values() for c in cats})
    if len(values) < 2 or not per_unit:
        return None
    width = max(len(c) for c in per_unit.values())
    data = np.full((width, len(per_unit)), np.nan)
    for column, cats in enumerate(per_unit.values()):
        for row, category in enumerate(cats):
            data[row, column] = values.index(category)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
