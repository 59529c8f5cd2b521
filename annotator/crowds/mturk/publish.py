"""Publishing a campaign on Mechanical Turk: one HIT type, then one HIT per unit whose ExternalQuestion
frames our HIT page; and the HITs' lifecycle afterwards (expire, extend, delete). Nothing is created
before the URL, the cost and the balance are checked, and a re-run after a crash creates nothing twice
(each HIT's UniqueRequestToken comes from campaign and unit, and every created HIT id is stored at once)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from annotator.crowds.base import Backend, CrowdError, LifecycleReport, PublishPlan
from annotator.crowds.external_url import check_external_url
from annotator.models import Campaign, Hit, ReviewAction
from annotator.services.campaigns import campaign_claim, campaign_mark_published
from mturk import client as mturk
from mturk.client import MTurkClient
from mturk.fees import assignment_cost, commission_rate
from mturk.question import external_question

LOCALE = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")  # a country, or a country and its subdivision


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

    def check(self) -> None:
        """MTurk's own limits, refused here by option name before any call."""
        ranges = {
            "--auto-approval-hours": (self.auto_approval_hours, 0, 720),  # MTurk: at most 30 days
            "--lifetime-hours": (self.lifetime_hours, 1, 8760),  # at most a year
            "--frame-height": (self.frame_height, 0, 10_000),
            "--min-approval-rate": (self.approval_rate, 0, 100),
            "--min-approved-hits": (self.approved_hits, 0, 1_000_000),
            "--qualification-min": (self.qualification_min, 0, 1_000_000),
        }
        for option, (value, low, high) in ranges.items():
            if value is not None and not low <= value <= high:
                raise CrowdError(f"{option} must be between {low} and {high:,}, not {value}.")
        bad = [code for code in self.locales if not LOCALE.fullmatch(code)]
        if bad:
            raise CrowdError(
                f"--locale {', '.join(map(repr, bad))}: give countries as ISO codes, comma-separated (US,GB or US-CA)."
            )

    def qualifications(self) -> list[dict]:
        return mturk.qualification_requirements(
            approval_rate=self.approval_rate,
            approved_hits=self.approved_hits,
            locales=self.locales,
            custom_type=self.qualification_type,
            custom_min=self.qualification_min,
        )


@dataclass
class MTurkState:
    """What a campaign on MTurk keeps in `Campaign.crowd_state`: its publish settings and HIT type."""

    settings: MTurkSettings | None
    hit_type_id: str = ""

    @classmethod
    def of(cls, campaign: Campaign) -> MTurkState:
        state = campaign.crowd_state or {}
        known = {f.name for f in fields(MTurkSettings)}
        chosen = {k: v for k, v in state.items() if k in known}
        return cls(MTurkSettings(**chosen) if "external_url" in chosen else None, str(state.get("hit_type_id") or ""))

    def record(self) -> dict[str, Any]:
        return {**(asdict(self.settings) if self.settings else {}), "hit_type_id": self.hit_type_id}


@dataclass
class QualificationTest:
    test_xml: str
    answer_key_xml: str


@dataclass
class CostPlan:
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


def settings_from(options: dict[str, Any], *, local_service: str) -> tuple[MTurkSettings, QualificationTest | None]:
    """`publish`'s options as MTurk settings; the URL is checked before any call."""
    defaults = MTurkSettings(external_url="")
    url = check_external_url(options.get("external_url") or "", platform="Mechanical Turk", local_service=local_service)

    pick = options.get  # an option not given is absent: each crowd has its own defaults
    chosen = MTurkSettings(
        external_url=url,
        title=pick("title", defaults.title),
        description=pick("description", defaults.description),
        keywords=pick("keywords", defaults.keywords),
        auto_approval_hours=pick("auto_approval_hours", defaults.auto_approval_hours),
        lifetime_hours=pick("lifetime_hours", defaults.lifetime_hours),
        frame_height=pick("frame_height", defaults.frame_height),
        approval_rate=pick("min_approval_rate", defaults.approval_rate),
        approved_hits=pick("min_approved_hits", defaults.approved_hits),
        locales=[c.strip() for c in pick("locale", "").split(",")] if pick("locale", "") else [],
        qualification_type=pick("qualification_type", ""),
        qualification_min=pick("qualification_min", defaults.qualification_min),
    )
    chosen.check()
    test = None
    if options.get("qualification_test"):
        if not options.get("qualification_answers"):
            raise CrowdError("--qualification-test needs --qualification-answers (the AnswerKey XML).")
        test = QualificationTest(
            Path(options["qualification_test"]).read_text(), Path(options["qualification_answers"]).read_text()
        )
    return chosen, test


def _pending(campaign: Campaign) -> QuerySet[Hit]:
    return campaign.hits.filter(remote_id="").order_by("id")


def cost_plan(campaign: Campaign, client: MTurkClient) -> CostPlan:
    """What publishing the campaign's not-yet-created HITs costs, against the account's balance."""
    count = _pending(campaign).count()
    per_hit = campaign.answers_per_unit
    each = assignment_cost(campaign.reward, per_hit)
    balance = mturk.account_balance(client) if count else None
    return CostPlan(
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


def campaign_publish_mturk(
    *,
    campaign: Campaign,
    plan: PublishPlan,
    client: MTurkClient,
    actor: str,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Create the HIT type and every HIT not created yet, after the qualification test if one was given."""
    backend: Backend = plan.backend
    chosen: MTurkSettings = plan.settings[0]
    test: QualificationTest | None = plan.settings[1]
    cost: CostPlan = plan.detail
    if not cost.enough:
        raise CrowdError(f"The MTurk account cannot pay for this campaign.\n{cost.describe()}")
    lines = []
    if test is not None:
        chosen.qualification_type = mturk.create_qualification_test(
            client,
            name=f"{campaign.name}: qualification",
            description=f"Qualification for {chosen.title}",
            test_xml=test.test_xml,
            answer_key_xml=test.answer_key_xml,
        )
        lines.append(f"Qualification test created: {chosen.qualification_type}")
    type_id = mturk.create_hit_type(
        client,
        title=chosen.title,
        description=chosen.description,
        keywords=chosen.keywords,
        reward=campaign.reward,
        assignment_seconds=campaign.assignment_minutes * 60,
        auto_approval_seconds=chosen.auto_approval_hours * 3600,
        qualifications=chosen.qualifications(),
    )
    campaign_claim(campaign, backend, **MTurkState(chosen, type_id).record())
    campaign_mark_published(campaign)
    created = recovered = 0
    present = campaign.hits.exclude(remote_id="").count()
    for hit in _pending(campaign).select_related("campaign"):
        url = f"{chosen.external_url}{reverse('mturk-hit', args=[hit.key])}"
        hit_id, made = mturk.create_hit(
            client,
            hit_type_id=type_id,
            question=external_question(url, chosen.frame_height),
            max_assignments=hit.answers_wanted,
            lifetime_seconds=chosen.lifetime_hours * 3600,
            annotation=hit_annotation(hit),
            token=hit_token(hit),
        )
        Hit.objects.filter(pk=hit.pk).update(remote_id=hit_id, remote_status="Assignable")
        created += made
        recovered += not made
        if progress:
            progress(1)
    ReviewAction.objects.create(
        actor=actor,
        action=ReviewAction.Action.PUBLISH,
        details={
            "campaign": campaign.name,
            "backend": backend.name,
            "hit_type": type_id,
            "created": created,
            "recovered": recovered,
        },
    )
    lines.append(
        f"HIT type {type_id}: {created} HITs created, {recovered} found created by an earlier run, {present} "
        f"already published. Next: manage.py sync {campaign.name}"
    )
    return lines


def hits_change(*, campaign: Campaign, action: str, client: MTurkClient, hours: int = 24) -> LifecycleReport:
    """`expire` (workers can no longer accept; submitted work stays), `extend` by `hours` from now or
    from the current expiry, whichever is later, or `delete` (MTurk allows it only for reviewable HITs
    whose assignments are all approved or rejected: the others are reported). Refusals don't stop
    the rest."""
    report = LifecycleReport()
    now = timezone.now()
    for hit in campaign.hits.exclude(remote_id="").exclude(remote_status="Deleted").order_by("id"):
        try:
            if action == "expire":
                mturk.update_expiration(client, hit.remote_id, now)
                Hit.objects.filter(pk=hit.pk).update(remote_expires_at=now)
            elif action == "extend":
                until = max(now, hit.remote_expires_at or now) + timedelta(hours=hours)
                mturk.update_expiration(client, hit.remote_id, until)
                Hit.objects.filter(pk=hit.pk).update(remote_expires_at=until)
            else:
                mturk.delete_hit(client, hit.remote_id)
                Hit.objects.filter(pk=hit.pk).update(remote_status="Deleted")
            report.done += 1
        except mturk.MTurkError as error:
            report.refused.append(f"HIT {hit.remote_id} (unit {hit.unit_id}): {error}")
    return report
