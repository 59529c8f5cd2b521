"""Reads for the staff dashboard: the unit grid, a unit's page, campaign money and worker quality,
and crowd labels beside Network Dissection's. Each page costs a bounded number of queries."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, Prefetch, QuerySet

from annotator.crowds import CampaignMoney, crowd_for
from annotator.labels import normalise
from annotator.models import (
    Answer,
    AutoLabel,
    Campaign,
    Dissection,
    Hit,
    HitImage,
    Layer,
    ReviewAction,
    TopImage,
    Unit,
    UnitEvaluation,
    UnitLabel,
)
from annotator.selectors import is_object_detector
from annotator.selectors.automatic import Withheld, agree, first_auto_labels

THUMBNAILS = 6
SORTS = ("unit", "label", "category", "precision", "agreement", "rho", "status", "rf")


def related_or_none(obj, name: str):
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


@dataclass
class UnitCard:
    """What the grid shows of a unit; final values are the reviewer's where there is one."""

    unit: Unit
    label: UnitLabel | None
    thumbnails: list[str]
    rf_picture: str
    rf_px: float | None
    campaigns: list[tuple[str, int, int]] = field(default_factory=list)  # (campaign, answers counted, wanted)
    evaluation: UnitEvaluation | None = None  # the latest presence campaign's, beyond the top images
    auto: AutoLabel | None = None  # the automatic label (computed here before imported)

    @property
    def auto_agrees(self) -> bool:
        return self.auto is not None and agree(self.label, self.auto)

    @property
    def rho(self) -> float | None:
        return self.evaluation.rho if self.evaluation else None

    @property
    def final_label(self) -> str:
        return self.label.final_label if self.label else ""

    @property
    def final_category(self) -> str:
        return self.label.final_category if self.label else ""

    @property
    def final_status(self) -> str:
        return self.label.final_status if self.label else UnitLabel.Status.PENDING

    @property
    def final_status_label(self) -> str:
        return UnitLabel.Status(self.final_status).label

    @property
    def precision(self) -> float | None:
        return self.label.precision if self.label else None

    @property
    def agreement(self) -> float | None:
        return self.label.category_agreement if self.label else None

    @property
    def reviewed(self) -> bool:
        return bool(
            self.label
            and self.label.reviewed_at
            and (self.label.review_status or self.label.review_label or self.label.review_category)
        )


def _sort_key(name: str):
    """Missing values sort last whichever the direction; ties go by unit number."""

    def key(card: UnitCard):
        value = {
            "unit": card.unit.index,
            "label": card.final_label.lower(),
            "category": card.final_category,
            "precision": card.precision,
            "agreement": card.agreement,
            "rho": card.rho,
            "status": card.final_status,
            "rf": card.rf_px,
        }[name]
        return value

    return key


def layer_units(
    layer: Layer,
    *,
    sort: str = "unit",
    descending: bool = False,
    status: str = "",
    category: str = "",
    text: str = "",
    min_precision: float | None = None,
    min_agreement: float | None = None,
    detects: str = "",
    min_rho: float | None = None,
    max_rho: float | None = None,
    auto: str = "",
    pictures: bool = True,
    hidden: Withheld | None = None,
) -> list[UnitCard]:
    """The layer's units as grid cards, filtered (status, category, a word in the label, least
    precision and agreement, a range of the correlation beyond the top images, or the object detectors
    of one label: a histogram bar's units) and sorted. Without `pictures` the cards carry only what
    filtering and sorting read (the unit page's previous / next), not thumbnails or per-campaign counts.
    `hidden`: the automatic labels a blind review withholds, where the page has them already."""
    units = Unit.objects.filter(layer=layer).select_related("label", "receptive_field").order_by("index")
    per_unit: dict[int, list[tuple[str, int, int]]] = {}
    if pictures:
        units = units.prefetch_related(
            Prefetch(
                "top_images",
                to_attr="thumbs",
                queryset=TopImage.objects.filter(rank__lt=THUMBNAILS, segmentation__isnull=False)
                .select_related("segmentation")
                .order_by("rank"),
            )
        )
        counted = dict(
            Answer.objects.filter(unit__layer=layer, counts=True)
            .order_by()
            .values("hit_id")
            .annotate(n=Count("id"))
            .values_list("hit_id", "n")
        )
        for hit in (
            Hit.objects.filter(unit__layer=layer)
            .select_related("campaign")
            .annotate(wanted=Hit.answers_wanted_expression())
            .order_by("campaign__created_at", "id")
        ):
            per_unit.setdefault(hit.unit_id or 0, []).append((hit.campaign.name, counted.get(hit.pk, 0), hit.wanted))
    evaluations = latest_evaluations(layer)
    automatic = first_auto_labels(layer, hidden=hidden)
    cards = []
    for unit in units:
        rf = related_or_none(unit, "receptive_field")
        cards.append(
            UnitCard(
                unit=unit,
                label=related_or_none(unit, "label"),
                thumbnails=[t.segmentation.rendered_path for t in getattr(unit, "thumbs", [])],
                rf_picture=rf.picture_path if rf else "",
                rf_px=rf.empirical_px if rf else None,
                campaigns=per_unit.get(unit.pk, []),
                evaluation=evaluations.get(unit.pk),
                auto=automatic.get(unit.pk),
            )
        )
    if status:
        cards = [c for c in cards if c.final_status == status]
    if category:
        cards = [c for c in cards if c.final_category == category]
    if min_precision is not None:
        cards = [c for c in cards if c.precision is not None and c.precision >= min_precision]
    if min_agreement is not None:
        cards = [c for c in cards if c.agreement is not None and c.agreement >= min_agreement]
    if auto == "agree":
        cards = [c for c in cards if c.auto_agrees]
    elif auto == "disagree":
        cards = [c for c in cards if c.auto is not None and not c.auto_agrees]
    if min_rho is not None:
        cards = [c for c in cards if c.rho is not None and c.rho >= min_rho]
    if max_rho is not None:
        cards = [c for c in cards if c.rho is not None and c.rho <= max_rho]
    if detects:
        cards = [c for c in cards if c.label is not None and is_object_detector(c.label) and c.final_label == detects]
    if text:
        words = normalise(text)
        cards = [c for c in cards if words and words in normalise(c.final_label)]
    name = sort if sort in SORTS else "unit"
    key = _sort_key(name)
    present = [c for c in cards if key(c) not in (None, "")]
    missing = [c for c in cards if key(c) in (None, "")]
    present.sort(key=lambda c: c.unit.index)
    present.sort(key=key, reverse=descending)
    return present + missing


def latest_evaluations(layer: Layer) -> dict[int, UnitEvaluation]:
    """unit id -> its evaluation by the newest presence campaign that rated it."""
    out: dict[int, UnitEvaluation] = {}
    for row in (
        UnitEvaluation.objects.filter(unit__layer=layer)
        .select_related("campaign")
        .order_by("campaign__created_at", "campaign_id")
    ):
        out[row.unit_id] = row
    return out


def unit_page(unit_id: int) -> Unit | None:
    """A unit with everything its page shows: top images, RF, label, answers, actions, auto labels."""
    return (
        Unit.objects.filter(pk=unit_id)
        .select_related("layer__network", "label", "receptive_field")
        .prefetch_related(
            Prefetch("top_images", queryset=TopImage.objects.select_related("image", "segmentation").order_by("rank")),
            Prefetch(
                "answers",
                queryset=Answer.objects.select_related("worker", "assignment", "hit__campaign").order_by("id"),
            ),
            Prefetch("review_actions", queryset=ReviewAction.objects.select_related("answer__worker")),
            "auto_labels",
            "hits__campaign",
        )
        .first()
    )


@dataclass(frozen=True)
class SeenImage:
    """One image of a HIT as its worker saw it, and whether they marked it as not matching."""

    number: int
    path: str
    gold: bool
    marked: bool


def answers_as_seen(answers: list[Answer]) -> dict[int, list[SeenImage]]:
    """Each answer's HIT images in the HIT's order, with its marks and the gold images flagged: why a
    precision is low, as the reviewer can check by eye. Imported answers have no HIT and no entry."""
    hit_ids = {a.hit_id for a in answers if a.hit_id}
    slots: dict[int, list[tuple[int, str, bool]]] = {}
    for hit_id, position, path, gold in (
        HitImage.objects.filter(hit_id__in=hit_ids)
        .order_by("hit_id", "position")
        .values_list("hit_id", "position", "top_image__segmentation__rendered_path", "gold")
    ):
        slots.setdefault(hit_id, []).append((position, path or "", gold))
    seen = {}
    for answer in answers:
        if answer.hit_id in slots:
            marked = set(answer.marked)
            seen[answer.pk] = [
                SeenImage(number=i, path=path, gold=gold, marked=position in marked)
                for i, (position, path, gold) in enumerate(slots[answer.hit_id], start=1)
            ]
    return seen


def seconds_spent(answer: Answer) -> float | None:
    if answer.opened_at and answer.submitted_at:
        return (answer.submitted_at - answer.opened_at).total_seconds()
    return None


@dataclass
class WorkerQuality:
    """How far a worker's answers can be trusted: the figures a reviewer rejects or blocks by."""

    worker: str
    kind: str
    worker_id: int | None
    blocked: bool = False
    answers: int = 0
    rejected: int = 0
    gold_shown: int = 0
    gold_passed: int = 0
    agree: int = 0
    compared: int = 0
    marks_none: int = 0
    marks_all: int = 0
    seconds: list[float] = field(default_factory=list)

    @property
    def gold_rate(self) -> float | None:
        return self.gold_passed / self.gold_shown if self.gold_shown else None

    @property
    def agreement(self) -> float | None:
        return self.agree / self.compared if self.compared else None

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


def worker_quality(*, campaign: Campaign | None = None, network: str | None = None) -> list[WorkerQuality]:
    """Per worker: answers, rejections, gold pass rate, agreement with the unit's consensus category,
    answers that mark no image or every image of the unit, and the median time spent."""
    answers = Answer.objects.select_related("worker", "unit__label", "hit")
    if campaign is not None:
        answers = answers.filter(hit__campaign=campaign)
    if network:
        answers = answers.filter(unit__layer__network__name=network)
    rows: dict[int | None, WorkerQuality] = {}
    for answer in answers.order_by("id"):
        worker = answer.worker
        key = worker.pk if worker else None
        row = rows.setdefault(
            key,
            WorkerQuality(
                worker=worker.external_id if worker else "(no worker id)",
                kind=worker.kind if worker else "",
                worker_id=key,
                blocked=bool(worker and worker.blocked),
            ),
        )
        row.answers += 1
        row.rejected += answer.review == Answer.Review.REJECTED
        if answer.gold_total:
            row.gold_shown += 1
            row.gold_passed += answer.gold_marked == answer.gold_total
        if answer.unit is not None:  # a unit's own answer (a presence answer rates images of several)
            label = related_or_none(answer.unit, "label")
            if label is not None and label.final_category and label.answers > 1:
                row.compared += 1
                row.agree += answer.category == label.final_category
            own_marked = len(answer.marked) - answer.gold_marked
            row.marks_none += not answer.marked
            row.marks_all += bool(answer.hit and answer.hit.unit_images and own_marked >= answer.hit.unit_images)
        spent = seconds_spent(answer)
        if spent is not None:
            row.seconds.append(spent)
    return sorted(rows.values(), key=lambda r: (-r.answers, r.worker))


def campaign_money(campaign: Campaign) -> CampaignMoney:
    """What the campaign cost on its platform, as its crowd counts it (local annotators: nothing)."""
    return crowd_for(campaign).money(campaign)


def campaigns_with_progress() -> QuerySet[Campaign]:
    return Campaign.objects.select_related("network").order_by("-created_at")


def dissections() -> QuerySet[Dissection]:
    return Dissection.objects.select_related("network").order_by("-created_at")
