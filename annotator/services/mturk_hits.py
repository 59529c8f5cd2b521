"""Publishing a campaign on Mechanical Turk: one HIT type, then one HIT per unit whose ExternalQuestion
frames our HIT page. Nothing is created before the URL, the cost and the balance are checked, and a
re-run after a crash creates nothing twice (each HIT's UniqueRequestToken comes from campaign and unit,
and every created HIT id is stored at once)."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from annotator.models import Campaign, Hit, ReviewAction
from annotator.services.campaigns import CampaignError, check_backend
from mturk import client as mturk
from mturk.fees import assignment_cost, commission_rate
from mturk.question import external_question

LOOPBACK_NAMES = {"localhost"}


@dataclass
class MTurkSettings:
    """What workers see in MTurk's list and who may take the HITs."""

    external_url: str
    title: str = "Name what the highlighted image regions have in common"
    description: str = (
        "Look at about 60 images with highlighted regions, write one or two words for what most "
        "of them show, mark the images that don't match, and pick a category."
    )
    keywords: str = "image, labeling, categorization, vision, research"
    auto_approval_hours: int = 72
    lifetime_hours: int = 168
    frame_height: int = 0
    approval_rate: int | None = 95
    approved_hits: int | None = 100
    locales: list[str] = field(default_factory=list)
    qualification_type: str = ""
    qualification_min: int = 1

    def qualifications(self) -> list[dict]:
        return mturk.qualification_requirements(
            approval_rate=self.approval_rate,
            approved_hits=self.approved_hits,
            locales=self.locales,
            custom_type=self.qualification_type,
            custom_min=self.qualification_min,
        )


def check_external_url(url: str, local_service: str = "MTURK_ENDPOINT_URL") -> str:
    """Our site's public address, as the crowd's browsers will reach it: https and a host name that
    resolves. Plain http is accepted only for a loopback host while `local_service` (MTURK_ENDPOINT_URL,
    PROLIFIC_API_URL) points the platform's calls at a local service (tests, a private rehearsal)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if not host or parts.scheme not in ("https", "http") or parts.query or parts.fragment:
        raise CampaignError(f"--external-url {url!r} is not a site address such as https://annotate.example.org.")
    loopback = host in LOOPBACK_NAMES or _is_loopback_ip(host)
    if parts.scheme != "https" and not (loopback and os.environ.get(local_service)):
        raise CampaignError(f"--external-url must use https (the platforms send workers to https pages only): {url!r}.")
    try:
        socket.getaddrinfo(host, parts.port or 443)
    except (OSError, UnicodeError) as error:
        raise CampaignError(
            f"--external-url: the host name {host!r} does not resolve ({error}); workers could not reach the HIT pages."
        ) from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class PublishPlan:
    hits: int
    assignments_per_hit: int
    reward: Decimal
    commission: Decimal
    each: Decimal
    total: Decimal
    balance: Decimal | None

    @property
    def enough(self) -> bool:
        return self.balance is None or self.balance >= self.total

    def describe(self) -> str:
        lines = [
            f"{self.hits} HITs x {self.assignments_per_hit} assignments x ${self.reward:.2f} reward "
            f"+ {self.commission * 100:.0f}% MTurk commission (${self.each:.2f} an assignment) "
            f"= ${self.total:.2f}"
        ]
        if self.balance is not None:
            lines.append(f"Account balance: ${self.balance:.2f}{'' if self.enough else ' (not enough)'}")
        return "\n".join(lines)


def _pending(campaign: Campaign):
    return campaign.hits.filter(mturk_hit_id="").order_by("id")


def publish_plan(*, campaign: Campaign, client) -> PublishPlan:
    """What publishing the campaign's not-yet-created HITs costs, against the account's balance."""
    count = _pending(campaign).count()
    per_hit = campaign.answers_per_unit
    each = assignment_cost(campaign.reward, per_hit)
    balance = mturk.account_balance(client) if count else None
    return PublishPlan(
        hits=count,
        assignments_per_hit=per_hit,
        reward=campaign.reward,
        commission=commission_rate(per_hit),
        each=each,
        total=each * per_hit * count,
        balance=balance,
    )


def hit_token(hit: Hit) -> str:
    """The HIT's UniqueRequestToken: the same campaign and unit give the same token (64 characters at most)."""
    return f"ua-{hit.campaign_id}-{hit.unit_id}-{hit.key.hex[:12]}"


def hit_annotation(hit: Hit) -> str:
    return f"unit-annotator campaign {hit.campaign_id} unit {hit.unit_id} hit {hit.key}"


@dataclass
class PublishReport:
    hit_type_id: str
    created: int = 0
    recovered: int = 0
    present: int = 0


def campaign_publish_mturk(
    *,
    campaign: Campaign,
    backend: str,
    settings: MTurkSettings,
    client,
    actor: str,
    plan: PublishPlan | None = None,
    progress: Callable[[int], None] | None = None,
) -> PublishReport:
    """Create the HIT type and every HIT not created yet; the campaign is published on `backend`.
    `plan` is the cost check the caller showed the user (made here when not given)."""
    check_backend(campaign, backend)
    if campaign.status == Campaign.Status.FINISHED:
        raise CampaignError(f"Campaign {campaign.name!r} is finished.")
    plan = plan or publish_plan(campaign=campaign, client=client)
    if not plan.enough:
        raise CampaignError(f"The MTurk account cannot pay for this campaign.\n{plan.describe()}")
    type_id = mturk.create_hit_type(
        client,
        title=settings.title,
        description=settings.description,
        keywords=settings.keywords,
        reward=campaign.reward,
        assignment_seconds=campaign.assignment_minutes * 60,
        auto_approval_seconds=settings.auto_approval_hours * 3600,
        qualifications=settings.qualifications(),
    )
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(
            backend=backend,
            mturk={**asdict(settings), "hit_type_id": type_id},
            status=Campaign.Status.PUBLISHED,
            published_at=campaign.published_at or timezone.now(),
        )
    report = PublishReport(hit_type_id=type_id, present=campaign.hits.exclude(mturk_hit_id="").count())
    for hit in _pending(campaign).select_related("campaign"):
        url = f"{settings.external_url}{reverse('mturk-hit', args=[hit.key])}"
        hit_id, created = mturk.create_hit(
            client,
            hit_type_id=type_id,
            question=external_question(url, settings.frame_height),
            max_assignments=hit.answers_wanted,
            lifetime_seconds=settings.lifetime_hours * 3600,
            annotation=hit_annotation(hit),
            token=hit_token(hit),
        )
        Hit.objects.filter(pk=hit.pk).update(mturk_hit_id=hit_id, mturk_status="Assignable")
        report.created += created
        report.recovered += not created
        if progress:
            progress(1)
    ReviewAction.objects.create(
        actor=actor,
        action=ReviewAction.Action.PUBLISH,
        details={
            "campaign": campaign.name,
            "backend": backend,
            "hit_type": type_id,
            "created": report.created,
            "recovered": report.recovered,
        },
    )
    return report


@dataclass
class LifecycleReport:
    done: int = 0
    refused: list[str] = field(default_factory=list)


def hits_change(*, campaign: Campaign, action: str, client, actor: str, hours: int = 24) -> LifecycleReport:
    """`expire` (workers can no longer accept; submitted work stays), `extend` by `hours` from now or
    from the current expiry, whichever is later, or `delete` (MTurk allows it only for reviewable HITs
    whose assignments are all approved or rejected: the others are reported). Refusals don't stop
    the rest."""
    if action not in ("expire", "extend", "delete"):
        raise CampaignError(f"Unknown HIT action {action!r}: use expire, extend or delete.")
    if action == "extend" and not 1 <= hours <= 365 * 24:
        raise CampaignError("Extend by between 1 hour and a year.")
    report = LifecycleReport()
    now = timezone.now()
    for hit in campaign.hits.exclude(mturk_hit_id="").exclude(mturk_status="Deleted").order_by("id"):
        try:
            if action == "expire":
                mturk.update_expiration(client, hit.mturk_hit_id, now)
                Hit.objects.filter(pk=hit.pk).update(mturk_expires_at=now)
            elif action == "extend":
                until = max(now, hit.mturk_expires_at or now) + timedelta(hours=hours)
                mturk.update_expiration(client, hit.mturk_hit_id, until)
                Hit.objects.filter(pk=hit.pk).update(mturk_expires_at=until)
            else:
                mturk.delete_hit(client, hit.mturk_hit_id)
                Hit.objects.filter(pk=hit.pk).update(mturk_status="Deleted")
            report.done += 1
        except mturk.MTurkError as error:
            report.refused.append(f"HIT {hit.mturk_hit_id} (unit {hit.unit_id}): {error}")
    ReviewAction.objects.create(
        actor=actor,
        action=action,
        details={
            "campaign": campaign.name,
            "hits": report.done,
            "refused": len(report.refused),
            **({"hours": hours} if action == "extend" else {}),
        },
    )
    return report
