"""Campaigns and their HITs: which units go out, with which images, to which backend.

A HIT is built once, when its campaign is created, and never changes afterwards: its slots (the
unit's segmented top images plus gold images of other units at random positions) are what every
worker of that HIT sees, so their answers stay comparable."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from annotator.models import Campaign, Hit, HitImage, Layer, Network, TopImage


class CampaignError(Exception):
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
        if self.reward < 0:
            raise CampaignError("--reward cannot be negative.")
        if self.assignment_minutes < 1:
            raise CampaignError("The assignment time must be at least one minute.")


@dataclass
class CampaignPlan:
    network: Network
    layers: list[Layer]
    tops: dict[int, dict[int, list[tuple[int, int]]]]


def campaign_plan(*, name: str, network: str, layers: list[str], settings: CampaignSettings) -> CampaignPlan:
    """Check a campaign request without writing anything (the command and the dashboard form both ask)."""
    settings.check()
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
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name,
            network=plan.network,
            answers_per_unit=settings.answers_per_unit,
            images_per_hit=settings.images_per_hit,
            gold_per_hit=settings.gold_per_hit,
            reward=settings.reward,
            assignment_minutes=settings.assignment_minutes,
            instructions=settings.instructions,
        )
        campaign.layers.set(plan.layers)
        for layer in plan.layers:
            _create_hits(campaign, plan.tops[layer.pk], settings)
    return campaign


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


def _create_hits(campaign: Campaign, units: dict[int, list[tuple[int, int]]], settings: CampaignSettings) -> None:
    """Gold images come from other units of the same layer, one per unit where possible, and never
    show an image that is also among this unit's own."""
    wanted = settings.images_per_hit - settings.gold_per_hit
    slots = []
    for unit_id, own in units.items():
        rng = random.Random(f"{settings.seed}:{campaign.name}:{unit_id}")
        own = own[:wanted]
        own_images = {image_id for _, image_id in own}
        gold: list[int] = []
        others = [u for u in units if u != unit_id]
        rng.shuffle(others)
        for other in others:
            if len(gold) == settings.gold_per_hit:
                break
            choices = [top for top, image in units[other] if image not in own_images]
            if choices:
                gold.append(rng.choice(choices))
        hit = Hit.objects.create(campaign=campaign, unit_id=unit_id, unit_images=len(own))
        entries = [(top, False) for top, _ in own] + [(top, True) for top in gold]
        rng.shuffle(entries)
        slots += [
            HitImage(hit=hit, position=i, top_image_id=top, gold=is_gold) for i, (top, is_gold) in enumerate(entries)
        ]
    HitImage.objects.bulk_create(slots, batch_size=2000)


def check_backend(campaign: Campaign, backend: str) -> None:
    """A campaign runs on one backend: refuse publishing it on another."""
    if campaign.backend and campaign.backend != backend:
        raise CampaignError(
            f"Campaign {campaign.name!r} is published on {campaign.backend} already; "
            "a campaign runs on one backend (create another campaign for another one)."
        )


def campaign_publish(*, campaign: Campaign, backend: str) -> Campaign:
    """Make a campaign's HITs available. Local: annotators' "next HIT" starts offering them.

    The Mechanical Turk backends create their HITs through `mturk/` on top of the same records."""
    if backend not in Campaign.Backend.values:
        raise CampaignError(f"Unknown backend {backend!r}; use one of {', '.join(Campaign.Backend.values)}.")
    check_backend(campaign, backend)
    if backend != Campaign.Backend.LOCAL:
        raise CampaignError(
            "Mechanical Turk campaigns are published with their settings and an external URL: "
            f"manage.py publish {campaign.name} --backend {backend} --external-url https://HOST."
        )
    updated = Campaign.objects.filter(pk=campaign.pk, backend__in=["", backend]).update(
        backend=backend, status=Campaign.Status.PUBLISHED, published_at=campaign.published_at or timezone.now()
    )
    if not updated:
        raise CampaignError(f"Campaign {campaign.name!r} was published elsewhere meanwhile.")
    campaign.refresh_from_db()
    return campaign


def campaign_get(name: str) -> Campaign:
    campaign = Campaign.objects.filter(name=name).select_related("network").first()
    if campaign is None:
        known = ", ".join(Campaign.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise CampaignError(f"No campaign named {name!r} (known: {known}).")
    return campaign
