"""Campaigns and their HITs: which units go out, asking which question (the campaign's task), on which
crowd.

A HIT is built once, when its campaign is created, by its task (`Task.build_hits`), and never changes
afterwards: its slots are what every worker of that HIT sees, so their answers stay comparable."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotator.crowds import Backend, backend_of
from annotator.errors import ActionRefused
from annotator.models import Campaign, Layer, Network, ReviewAction, TopImage
from annotator.task_kinds import default_task, task_named


class CampaignError(ActionRefused):
    """A campaign request that cannot be carried out; the message says what to change."""


@dataclass(frozen=True)
class CampaignSettings:
    answers_per_unit: int = 3
    images_per_hit: int = 60
    gold_per_hit: int = 3
    reward: Decimal = Decimal("0.10")
    assignment_minutes: int = 30
    instructions: str = ""
    seed: int = 0
    task: str = ""  # a HIT task's name (settings.HIT_TASKS); empty: the first
    units: tuple[str, ...] = ("all",)  # which units: all, iou-below X, disagree (with the automatic labels)
    reviewers_see_automatic: bool = True  # off: a blind review (the dashboard withholds the automatic labels)

    def check(self) -> None:
        if self.answers_per_unit < 1:
            raise CampaignError("--answers-per-unit must be at least 1.")
        if self.images_per_hit < 1:
            raise CampaignError("--images-per-hit must be at least 1.")
        if not 0 <= self.gold_per_hit < self.images_per_hit:
            raise CampaignError(
                f"--gold-per-hit must be between 0 and {self.images_per_hit - 1} "
                f"(fewer than the {self.images_per_hit} image slots)."
            )
        if not self.reward.is_finite() or not 0 <= self.reward <= MAX_REWARD:
            raise CampaignError(
                f"--reward must be between 0 and {MAX_REWARD} US dollars an assignment, not {self.reward}."
            )
        if self.answers_per_unit > MAX_ANSWERS:
            raise CampaignError(f"--answers-per-unit must be at most {MAX_ANSWERS}.")
        if not 1 <= self.assignment_minutes <= MAX_MINUTES:
            raise CampaignError(f"--assignment-minutes must be between 1 and {MAX_MINUTES} (a week).")


MAX_REWARD = Decimal("100.00")  # US dollars an assignment: far above any HIT's, far below the field's limit
MAX_ANSWERS = 100
MAX_MINUTES = 7 * 24 * 60
NAME_MAX = 100
_NAME = re.compile(r"[^\W_][\w .-]*")


def campaign_name_check(name: str) -> None:
    """A campaign's name is typed on command lines and shown everywhere: 1 to 100 letters, digits,
    spaces, dots, dashes or underscores, starting with a letter or digit."""
    if not name or len(name) > NAME_MAX or not _NAME.fullmatch(name) or name != name.strip():
        raise CampaignError(
            f"Campaign name {name!r}: use 1 to {NAME_MAX} letters, digits, spaces, '.', '-' or '_', "
            "starting with a letter or digit."
        )


@dataclass
class CampaignPlan:
    network: Network
    layers: list[Layer]
    tops: dict[int, dict[int, list[tuple[int, int]]]]


def campaign_plan(*, name: str, network: str, layers: list[str], settings: CampaignSettings) -> CampaignPlan:
    """Check a campaign request without writing anything (the command and the dashboard form both ask)."""
    settings.check()
    campaign_name_check(name)
    if Campaign.objects.filter(name=name).exists():
        raise CampaignError(f"A campaign named {name!r} exists already; choose another name.")
    net = Network.objects.filter(name=network).first()
    if net is None:
        known = ", ".join(Network.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise CampaignError(f"No network named {network!r} (known: {known}). Run `dissect` first.")
    by_name = {layer.name: layer for layer in net.layers.all()}
    unknown = [name for name in layers if name not in by_name]
    if unknown or not layers:
        raise CampaignError(
            f"Unknown layer(s) {', '.join(unknown) or '(none given)'} of {network}; "
            f"it has {', '.join(by_name) or 'no layers'}."
        )
    chosen = [by_name[name] for name in layers]
    tops = _segmented_top_images(chosen)
    wanted = units_worth_asking(chosen, settings.units)
    if wanted is not None:
        tops = {layer: {u: t for u, t in units.items() if u in wanted} for layer, units in tops.items()}
    empty = [layer.name for layer in chosen if not tops.get(layer.pk)]
    if empty:
        raise CampaignError(
            f"Layer(s) {', '.join(empty)} of {network} have no segmented units; finish `dissect` for them first."
        )
    return CampaignPlan(net, chosen, tops)


def campaign_create(
    *, name: str, network: str, layers: list[str], settings: CampaignSettings | None = None
) -> Campaign:
    """Create a campaign and one HIT per segmented unit of the given layers, in one transaction."""
    settings = settings or CampaignSettings()
    plan = campaign_plan(name=name, network=network, layers=layers, settings=settings)
    task = task_named(settings.task) if settings.task else default_task()
    with transaction.atomic():
        campaign = campaign_row(name=name, task=task.name, network=plan.network, settings=settings)
        campaign.layers.set(plan.layers)
        for layer in plan.layers:
            task.build_hits(campaign, plan.tops[layer.pk], seed=settings.seed)
    return campaign


def units_worth_asking(layers: list[Layer], spec: tuple[str, ...]) -> set[int] | None:
    """The units a campaign asks about by its automatic labels (`--units`): None for all of them;
    `iou-below X` those whose automatic IoU is below X (not automatic detectors); `disagree` those whose
    crowd and automatic labels do not agree (`selectors.automatic.agree`)."""
    from annotator.models import AutoLabel, UnitLabel
    from annotator.selectors.automatic import NONE_WITHHELD, agree, first_auto_labels

    kind = spec[0] if spec else "all"
    if kind == "all" and len(spec) <= 1:
        return None
    autos: dict[int, AutoLabel] = {}
    for layer in layers:
        autos.update(first_auto_labels(layer, hidden=NONE_WITHHELD))
    if kind in ("iou-below", "disagree") and not autos:
        raise CampaignError(
            f"--units {' '.join(spec)} needs automatic labels: run `label_automatic NETWORK --probe DIR` (or import "
            "a NetDissect tally) first."
        )
    if kind == "iou-below" and len(spec) == 2:
        try:
            limit = float(spec[1])
        except ValueError:
            limit = float("nan")
        if not 0 <= limit <= 1:
            raise CampaignError(f"--units iou-below takes an IoU between 0 and 1, not {spec[1]!r}.")
        return {unit for unit, auto in autos.items() if auto.score < limit}
    if kind == "disagree" and len(spec) == 1:
        labels = {label.unit_id: label for label in UnitLabel.objects.filter(unit__layer__in=layers)}
        return {unit for unit, auto in autos.items() if not agree(labels.get(unit), auto)}
    raise CampaignError(f"--units {' '.join(spec)}: use all, iou-below X (an IoU such as 0.04) or disagree.")


def campaign_row(*, name: str, task: str, network: Network, settings: CampaignSettings, **extra: object) -> Campaign:
    """The campaign's own row, from the settings every task's campaign has (call inside the
    transaction that builds its HITs)."""
    return Campaign.objects.create(
        name=name,
        task=task,
        network=network,
        answers_per_unit=settings.answers_per_unit,
        images_per_hit=settings.images_per_hit,
        gold_per_hit=settings.gold_per_hit,
        reward=settings.reward,
        assignment_minutes=settings.assignment_minutes,
        instructions=settings.instructions,
        reviewers_see_automatic=settings.reviewers_see_automatic,
        **extra,
    )


def campaign_automatic_show(*, campaign: Campaign, show: bool, actor: str) -> bool:
    """Show the campaign's reviewers its units' automatic labels, or withhold them (a blind review:
    `annotator.selectors.automatic.withheld`); each change is kept in the review log with who made it,
    so a reader of the results knows when reviewers could see them. Returns whether anything changed."""
    changed = (
        Campaign.objects.filter(pk=campaign.pk)
        .exclude(reviewers_see_automatic=show)
        .update(reviewers_see_automatic=show)
    )
    if changed:
        ReviewAction.objects.create(
            actor=actor,
            action=ReviewAction.Action.SHOW_AUTOMATIC if show else ReviewAction.Action.HIDE_AUTOMATIC,
            details={"campaign": campaign.name},
        )
    campaign.refresh_from_db()
    return bool(changed)


def _segmented_top_images(layers: list[Layer]) -> dict[int, dict[int, list[tuple[int, int]]]]:
    """layer id -> unit id -> [(top image id, image id)] by rank, for units whose segmentation is done."""
    rows = (
        TopImage.objects.filter(unit__layer__in=layers, unit__receptive_field__isnull=False, segmentation__isnull=False)
        .order_by("unit__layer_id", "unit__index", "rank")
        .values_list("unit__layer_id", "unit_id", "id", "image_id")
    )
    tops: dict[int, dict[int, list[tuple[int, int]]]] = defaultdict(dict)
    for layer_id, unit_id, top_id, image_id in rows:
        tops[layer_id].setdefault(unit_id, []).append((top_id, image_id))
    return tops


def campaign_check_backend(campaign: Campaign, backend: Backend) -> None:
    """A campaign runs on one crowd (and environment): refuse publishing it on another."""
    if campaign.platform and (campaign.platform, campaign.environment) != (backend.platform, backend.environment):
        ran = backend_of(campaign)
        raise CampaignError(
            f"Campaign {campaign.name!r} is published on {ran.name if ran else campaign.platform} already; a "
            "campaign runs on one backend (create another campaign for another one)."
        )


def campaign_claim(campaign: Campaign, backend: Backend, **state: object) -> None:
    """Tie the campaign to one crowd (and environment), with the crowd's record: a campaign runs on one,
    so publishing it elsewhere is refused. Adapters call it at their point of no return (before the
    first thing they create); run again on the same crowd it only updates the record."""
    campaign_check_backend(campaign, backend)
    changes: dict[str, object] = {"platform": backend.platform, "environment": backend.environment}
    if state:
        changes["crowd_state"] = {**campaign.crowd_state, **state}
    updated = Campaign.objects.filter(
        Q(platform="") | Q(platform=backend.platform, environment=backend.environment), pk=campaign.pk
    ).update(**changes)
    if not updated:
        raise CampaignError(f"Campaign {campaign.name!r} was published elsewhere meanwhile.")
    campaign.refresh_from_db()


def campaign_mark_published(campaign: Campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.PUBLISHED, published_at=campaign.published_at or timezone.now()
    )
    campaign.refresh_from_db()


def campaign_get(name: str) -> Campaign:
    campaign = Campaign.objects.filter(name=name).select_related("network").first()
    if campaign is None:
        known = ", ".join(Campaign.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise CampaignError(f"No campaign named {name!r} (known: {known}).")
    return campaign
