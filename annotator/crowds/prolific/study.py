"""A campaign as one Prolific study: publishing it, and mirroring its submissions (sync).

One study per campaign. Places are the answers the campaign needs divided by the HITs one participant
answers (`sessions`), rounded up; a participant who returns or times out frees their HITs for the next.

Trust follows MTurk's rule: an answer is stored at once but counts only once sync finds the
participant's submission in the study's list (anyone can make up a PROLIFIC_PID). A returned or
timed-out submission's answers are kept and shown, never counted (the participant withdrew)."""

from __future__ import annotations

import contextlib
import math
import secrets
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum
from django.urls import reverse
from django.utils import timezone

from annotator.crowds.base import Backend, CrowdError
from annotator.crowds.external_url import check_external_url
from annotator.crowds.prolific.common import DEFAULT_SHARE, ProlificState, fee, fee_rate
from annotator.crowds.prolific.review import block_group
from annotator.models import Answer, Assignment, Campaign, Hit, ProlificSession, ReviewAction
from annotator.services.aggregation import units_aggregate
from annotator.services.answers import answers_settle
from annotator.services.campaigns import campaign_claim
from prolific.client import DECIDED, RETURNED, ProlificApi, ProlificError

PLACEHOLDERS = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"


@dataclass
class ProlificSettings:
    """What participants see in Prolific's list, who may take the study, and how much each does."""

    external_url: str
    title: str = "Name what the highlighted image regions have in common"
    description: str = (
        "You will see sets of about 60 images with highlighted regions. For each set, write one or "
        "two words for what most of them show, mark the images that don't match, and pick a "
        "category. Desktop or laptop only."
    )
    hits_per_participant: int = DEFAULT_SHARE
    minutes_per_hit: int = 2
    approval_rate: int | None = 95
    previous_submissions: int | None = 100
    languages: list[str] = field(default_factory=list)  # Prolific's choice ids of its fluent-languages filter

    def check(self) -> None:
        if not 1 <= self.hits_per_participant <= 100:
            raise CrowdError("--hits-per-participant must be between 1 and 100.")
        if not 1 <= self.minutes_per_hit <= 60:
            raise CrowdError("--minutes-per-hit must be between 1 and 60.")
        if self.approval_rate is not None and not 0 <= self.approval_rate <= 100:
            raise CrowdError("--min-approval-rate is a percentage between 0 and 100.")
        if self.previous_submissions is not None and self.previous_submissions < 0:
            raise CrowdError("--min-previous-submissions cannot be negative.")

    def filters(self) -> list[dict]:
        """Prolific's study filters for the lab's usual requirements."""
        chosen = []
        if self.approval_rate is not None:
            chosen.append({"filter_id": "approval_rate", "selected_range": {"lower": self.approval_rate, "upper": 100}})
        if self.previous_submissions is not None:
            chosen.append({"filter_id": "approval_numbers", "selected_range": {"lower": self.previous_submissions}})
        if self.languages:
            chosen.append({"filter_id": "fluent-languages", "selected_values": list(self.languages)})
        return chosen


@dataclass
class StudyPlan:
    """What publishing costs, Prolific's fee included, shown before anything is created."""

    places: int
    hits_per_participant: int
    reward: Decimal  # per participant
    minutes: int
    total: Decimal
    fee: Decimal
    quoted: bool  # the total is Prolific's own quote

    def describe(self) -> str:
        hourly = self.reward * 60 / self.minutes if self.minutes else Decimal(0)
        source = "Prolific's cost calculator" if self.quoted else f"a {self.fee * 100:.1f}% service fee"
        return (
            f"{self.places} places x up to {self.hits_per_participant} HITs each, ${self.reward:.2f} a participant "
            f"for about {self.minutes} min (${hourly:.2f}/h) = ${self.total:.2f} with fees ({source})"
        )


def settings_from(options: dict[str, Any], *, local_service: str) -> ProlificSettings:
    """`publish`'s options as Prolific settings, checked; the URL before any call."""
    defaults = ProlificSettings(external_url="")
    pick = options.get  # an option not given is absent: each crowd has its own defaults
    chosen = ProlificSettings(
        external_url=check_external_url(
            options.get("external_url") or "", platform="Prolific", local_service=local_service
        ),
        title=pick("title", defaults.title),
        description=pick("description", defaults.description),
        hits_per_participant=pick("hits_per_participant", defaults.hits_per_participant),
        minutes_per_hit=pick("minutes_per_hit", defaults.minutes_per_hit),
        approval_rate=pick("min_approval_rate", defaults.approval_rate),
        previous_submissions=pick("min_previous_submissions", defaults.previous_submissions),
        languages=[c.strip() for c in pick("language", "").split(",") if c.strip()],
    )
    chosen.check()
    return chosen


def places_needed(campaign: Campaign, hits_per_participant: int) -> int:
    wanted = campaign.hits.aggregate(n=Sum(Hit.answers_wanted_expression()))["n"] or 0
    return max(1, math.ceil(wanted / hits_per_participant))


def study_plan(*, campaign: Campaign, settings: ProlificSettings, client: ProlificApi | None) -> StudyPlan:
    settings.check()
    places = places_needed(campaign, settings.hits_per_participant)
    reward = (campaign.reward * settings.hits_per_participant).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    total, quoted = fee(reward) * places, False
    if client is not None:
        with contextlib.suppress(ProlificError):  # else the estimate from the fee rate stands
            total, quoted = client.cost(int(reward * 100), places), True
    return StudyPlan(
        places=places,
        hits_per_participant=settings.hits_per_participant,
        reward=reward,
        minutes=settings.hits_per_participant * settings.minutes_per_hit,
        total=total,
        fee=fee_rate(),
        quoted=quoted,
    )


def internal_name(campaign: Campaign) -> str:
    """How a re-run finds the study an earlier run created (the campaign's id is unique here)."""
    return f"unit-annotator campaign {campaign.pk}: {campaign.name}"


def study_url(campaign: Campaign, external_url: str) -> str:
    return f"{external_url.rstrip('/')}{reverse('prolific-start', args=[campaign.pk])}?{PLACEHOLDERS}"


@dataclass
class PublishReport:
    study_id: str
    created: bool
    published: bool
    places: int


def campaign_publish_prolific(
    *,
    campaign: Campaign,
    backend: Backend,
    settings: ProlificSettings,
    client: ProlificApi,
    actor: str,
    plan: StudyPlan,
) -> PublishReport:
    """Create the campaign's study (or find the one an earlier run created), publish it, and raise its
    places to what the campaign needs. Every step is looked up before it is done: a re-run after a
    crash creates nothing twice, and a re-run with nothing to do changes nothing."""
    state = dict(campaign.crowd_state or {})
    code = state.get("completion_code") or secrets.token_hex(4).upper()
    study_id, created = state.get("study_id", ""), False
    if not study_id:
        found = [s for s in client.studies() if s.get("internal_name") == internal_name(campaign)]
        if found:
            study_id = found[0]["id"]
            code = _code_of(found[0]) or code
        else:
            blocked = block_group(client)
            filters = settings.filters() + (
                [{"filter_id": "participant_group_blocklist", "selected_values": [blocked["id"]]}] if blocked else []
            )
            study = client.create_study(
                {
                    "name": settings.title,
                    "internal_name": internal_name(campaign),
                    "description": settings.description,
                    "external_study_url": study_url(campaign, settings.external_url),
                    "prolific_id_option": "url_parameters",
                    "completion_codes": [
                        {"code": code, "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]}
                    ],
                    "total_available_places": plan.places,
                    "estimated_completion_time": plan.minutes,
                    "reward": int(plan.reward * 100),
                    "device_compatibility": ["desktop"],
                    "filters": filters,
                }
            )
            study_id, created = study["id"], True
        state.update(asdict(settings), study_id=study_id, completion_code=code, reward=str(plan.reward))
        campaign_claim(campaign, backend, **state)
    study = client.study(study_id)
    published = False
    if study.get("status") == "UNPUBLISHED":
        study = client.publish_study(study_id)
        published = True
    places = int(study.get("total_available_places") or 0)
    if places < plan.places:
        client.set_places(study_id, plan.places)
        places = plan.places
    state.update(status=study.get("status", ""), places=places)
    campaign_claim(campaign, backend, **state)
    if created or published:
        ReviewAction.objects.create(
            actor=actor,
            action=ReviewAction.Action.PUBLISH,
            details={"campaign": campaign.name, "backend": backend.name, "study": study_id, "places": places},
        )
    campaign.refresh_from_db()
    return PublishReport(study_id=study_id, created=created, published=published, places=places)


def _code_of(study: dict) -> str:
    codes = [c.get("code", "") for c in study.get("completion_codes") or [] if c.get("code_type") == "COMPLETED"]
    return codes[0] if codes else ""


# Sync -------------------------------------------------------------------------------------------------


STUDY_WORDS = {  # Prolific's study statuses as a reviewer reads them
    "UNPUBLISHED": "a draft, not published",
    "SCHEDULED": "scheduled",
    "ACTIVE": "active (taking participants)",
    "PAUSED": "paused",
    "AWAITING REVIEW": "awaiting review (no more places)",
    "COMPLETED": "completed",
}


@dataclass
class StudySyncReport:
    """What a Prolific sync found: the study's state and what its submissions changed here."""

    study_status: str = ""
    submissions: int = 0
    confirmed: int = 0
    returned: int = 0
    decided: int = 0
    unlisted: int = 0
    freed: int = 0

    def lines(self) -> list[str]:
        return [
            f"the study is {STUDY_WORDS.get(self.study_status, self.study_status.lower() or 'not found')}: "
            f"{self.submissions} submissions listed, {self.confirmed} answers "
            f"confirmed, {self.returned} participants returned or timed out (their HITs freed, their answers "
            f"kept but not counted), {self.decided} decisions mirrored, {self.unlisted} participants Prolific "
            f"does not list (their answers wait), {self.freed} HIT places freed"
        ]


def campaign_sync_prolific(*, campaign: Campaign, client: ProlificApi) -> StudySyncReport:
    """Mirror the study's and its submissions' states (every page). Running it twice changes nothing."""
    study_id = ProlificState.of(campaign).study_id
    if not study_id:
        raise CrowdError(f"Campaign {campaign.name!r} has no Prolific study yet: publish it first.")
    report = StudySyncReport()
    study = client.study(study_id)
    report.study_status = study.get("status", "")
    listed = {s.get("participant_id") or s.get("participant"): s for s in client.submissions(study_id)}
    report.submissions = len(listed)
    changed: set[int] = set()
    for session in ProlificSession.objects.filter(campaign=campaign).select_related("worker"):
        submission = listed.get(session.worker.external_id)
        mine = Assignment.objects.filter(worker=session.worker, hit__campaign=campaign)
        if submission is None:  # not a participant of the study: their HITs go back to the pool
            report.unlisted += 1
            report.freed += mine.filter(status=Assignment.Status.OPEN).update(
                status=Assignment.Status.ABANDONED, slot=None
            )
            continue
        status = submission.get("status", "")
        answers = Answer.objects.filter(worker=session.worker, hit__campaign=campaign)
        with transaction.atomic():
            if status in RETURNED:  # their HITs, answered or not, go back to the pool
                report.freed += mine.filter(status=Assignment.Status.OPEN).update(
                    status=Assignment.Status.ABANDONED, slot=None
                )
                report.freed += mine.exclude(slot=None).update(slot=None)
                held = answers.filter(held=Answer.Held.NONE)
                report.returned += session.status not in RETURNED
                ids = list(held.values_list("pk", flat=True))
                held.update(held=Answer.Held.RETURNED, confirmation=Answer.Confirmation.CONFIRMED)
            else:
                waiting = answers.filter(Q(confirmation=Answer.Confirmation.UNCONFIRMED) | Q(held=Answer.Held.RETURNED))
                ids = list(waiting.values_list("pk", flat=True))
                report.confirmed += len(ids)
                waiting.update(confirmation=Answer.Confirmation.CONFIRMED, held=Answer.Held.NONE)
                if status in DECIDED and session.reviewed != status.lower():
                    verdict = Answer.Review.APPROVED if status == "APPROVED" else Answer.Review.REJECTED
                    decided = (
                        answers.exclude(review=Answer.Review.REJECTED) if verdict == Answer.Review.APPROVED else answers
                    )
                    ids += list(decided.values_list("pk", flat=True))
                    decided.update(review=verdict)
                    report.decided += 1
                    ProlificSession.objects.filter(pk=session.pk).update(reviewed=status.lower())
            ProlificSession.objects.filter(pk=session.pk).update(
                status=status, session_id=submission.get("id") or session.session_id
            )
            changed |= answers_settle(ids)
    if changed:
        units_aggregate(unit_ids=sorted(changed))
    places = int(study.get("total_available_places") or ProlificState.of(campaign).places)
    Campaign.objects.filter(pk=campaign.pk).update(
        crowd_state={**campaign.crowd_state, "status": report.study_status, "places": places},
        synced_at=timezone.now(),
    )
    return report
