"""Mechanical Turk as a crowd: one HIT per unit, in the sandbox or production (the campaign's
environment), whose ExternalQuestion frames our HIT page (`pages`). An answer counts once sync has
seen its assignment on MTurk (`sync`); decisions, bonuses and blocks are made on MTurk first, so a
refusal there changes nothing here. Publishing and the HITs' lifecycle are in `publish`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db.models import Count, Q
from django.urls import URLPattern, path

from annotator.crowds.base import Backend, CampaignMoney, Crowd, CrowdError, LifecycleReport, Option, PublishPlan
from annotator.crowds.mturk import pages
from annotator.crowds.mturk.common import NAME, mturk_client, mturk_errors
from annotator.crowds.mturk.publish import MTurkState, campaign_publish_mturk, cost_plan, hits_change, settings_from
from annotator.crowds.mturk.sync import campaign_sync
from annotator.crowds.options import SHARED, int_or_none
from annotator.models import Answer, Assignment, Bonus, Campaign, Hit, Worker
from mturk import client as mturk
from mturk.fees import assignment_cost, bonus_cost

SANDBOX, PRODUCTION = "sandbox", "production"
LIFECYCLE = ("expire", "extend", "delete")


def _require_confirmed(answer: Answer, verb: str) -> None:
    """Only an assignment MTurk has listed can be paid or decided on there: a forged or unsent answer
    never costs money."""
    if answer.confirmation == Answer.Confirmation.UNKNOWN:
        raise CrowdError(f"MTurk does not know this assignment: it cannot be {verb}, and is never paid.")
    if answer.confirmation == Answer.Confirmation.MISMATCH:
        raise CrowdError(f"MTurk lists this assignment under another worker: it cannot be {verb} from here.")
    if answer.confirmation != Answer.Confirmation.CONFIRMED:
        raise CrowdError(f"MTurk has not listed this assignment yet: sync the campaign before it can be {verb}.")


class MTurkCrowd(Crowd):
    name = NAME
    label = "Mechanical Turk"
    short = "MTurk"
    backends = (
        Backend(SANDBOX, NAME, SANDBOX, "Mechanical Turk sandbox", default=True),
        Backend(PRODUCTION, NAME, PRODUCTION, "Mechanical Turk"),
    )
    confirms = True
    syncs = True
    bonus_per = "answer"
    pays_on_approval = True
    approves_rejected = True
    lifecycle = LIFECYCLE
    dashboard_template = "crowds/mturk/campaign.html"

    def client(self, environment: str) -> mturk.MTurkClient:
        return mturk_client(environment)

    # Publishing -------------------------------------------------------------------------------------

    def publish_options(self) -> list[Option]:
        return [
            *SHARED,
            Option(("--keywords",), {"help": "MTurk: the HITs' search keywords"}),
            Option(("--auto-approval-hours",), {"type": int, "help": "MTurk: approved by itself after this (72)"}),
            Option(("--lifetime-hours",), {"type": int, "help": "MTurk: how long workers can find the HITs (168)"}),
            Option(("--frame-height",), {"type": int, "help": "MTurk: pixels; 0 lets MTurk fit the frame (0)"}),
            Option(
                ("--min-approved-hits",),
                {"type": int_or_none, "help": "MTurk: HITs of a worker's approved so far (100; 'none' to drop)"},
            ),
            Option(("--locale",), {"help": "MTurk: comma-separated countries (US,GB or US-CA)"}),
            Option(("--qualification-type",), {"help": "MTurk: a qualification of yours workers must hold"}),
            Option(("--qualification-min",), {"type": int, "help": "MTurk: its least value (1)"}),
            Option(
                ("--qualification-test",),
                {
                    "type": Path,
                    "help": "MTurk: QuestionForm XML: create a "
                    "qualification test (with --qualification-answers, an AnswerKey XML) and require it",
                },
            ),
            Option(("--qualification-answers",), {"type": Path}),
        ]

    def publish_plan(self, campaign: Campaign, backend: Backend, options: dict[str, Any]) -> PublishPlan:
        chosen = settings_from(options, local_service=self.local_service())  # the URL before any call
        with mturk_errors():
            cost = cost_plan(campaign, self.client(backend.environment))
        where = "the MTurk SANDBOX (no money)" if backend.environment == SANDBOX else "PRODUCTION MTurk (real money)"
        return PublishPlan(
            backend=backend,
            where=where,
            text=cost.describe(),
            total=cost.total,
            enough=cost.enough,
            spends_money="production" if backend.environment == PRODUCTION else "",
            steps=cost.hits,
            settings=chosen,
            detail=cost,
        )

    def local_service(self) -> str:
        from django.conf import settings

        return settings.MTURK_ENDPOINT_URL

    def publish(
        self, campaign: Campaign, plan: PublishPlan, *, actor: str, progress: Callable[[int], None] | None = None
    ) -> list[str]:
        with mturk_errors():
            return campaign_publish_mturk(
                campaign=campaign,
                plan=plan,
                client=self.client(plan.backend.environment),
                actor=actor,
                progress=progress,
            )

    # Trust and sync -----------------------------------------------------------------------------------

    def takes_late_answer(self, assignment: Assignment, now: datetime) -> bool:
        """MTurk lets a worker submit an accepted assignment until its own deadline, even after the
        requester stopped the HIT."""
        return assignment.expires_at is not None and now <= assignment.expires_at

    def sync(self, campaign: Campaign, *, adopt: bool = False) -> list[str]:
        with mturk_errors():
            return campaign_sync(campaign=campaign, client=self.client(campaign.environment), adopt=adopt).lines()

    # Decisions --------------------------------------------------------------------------------------------

    def answer_rejecting(self, answer: Answer, feedback: str) -> None:
        if answer.review == Answer.Review.APPROVED:
            raise CrowdError(
                "This assignment is approved (and paid) on Mechanical Turk already; it can no longer be rejected."
            )
        if answer.confirmation == Answer.Confirmation.UNCONFIRMED:
            _require_confirmed(answer, "rejected")
        if answer.confirmation == Answer.Confirmation.CONFIRMED:  # one MTurk does not know is rejected here only
            hit, assignment, _ = answer.via_hit()
            with mturk_errors():
                mturk.reject_assignment(self.client(hit.campaign.environment), assignment.external_id, feedback)

    def answer_approving(self, answer: Answer, feedback: str) -> None:
        _require_confirmed(answer, "approved")
        hit, assignment, _ = answer.via_hit()
        with mturk_errors():
            mturk.approve_assignment(
                self.client(hit.campaign.environment),
                assignment.external_id,
                feedback,
                override_rejection=answer.review == Answer.Review.REJECTED,
            )

    def more_answers(self, hit: Hit, more: int) -> None:
        if not hit.remote_id:
            raise CrowdError(f"The HIT of unit {hit.unit_id} was never created on Mechanical Turk; publish first.")
        token = f"more-{hit.key.hex}-{hit.extra_answers + more}"
        with mturk_errors():
            mturk.create_additional_assignments(self.client(hit.campaign.environment), hit.remote_id, more, token)

    # Money --------------------------------------------------------------------------------------------------

    def bonus_answer(self, answer: Answer, bonus: Bonus) -> None:
        hit, assignment, worker = answer.via_hit()
        with mturk_errors():
            mturk.send_bonus(
                self.client(hit.campaign.environment),
                worker_id=worker.external_id,
                assignment_id=assignment.external_id,
                amount=bonus.amount,
                reason=bonus.reason,
                token=bonus.token,
            )

    def money(self, campaign: Campaign) -> CampaignMoney:
        """Rewards with MTurk's commission: spent on approved assignments, owed on submitted ones (MTurk
        approves those by itself after the auto-approval delay), of the assignments MTurk has listed."""
        # Only assignments MTurk has listed cost money: a made-up answer never adds to what is owed.
        mine = Answer.objects.filter(hit__campaign=campaign, confirmation=Answer.Confirmation.CONFIRMED)
        counts = mine.aggregate(
            approved=Count("id", filter=Q(review=Answer.Review.APPROVED)),
            submitted=Count("id", filter=Q(review=Answer.Review.SUBMITTED)),
        )
        each = assignment_cost(campaign.reward, campaign.answers_per_unit)
        paid = Bonus.objects.filter(answer__hit__campaign=campaign, paid=True).values_list("amount", flat=True)
        bonuses = sum((bonus_cost(b) for b in paid), Decimal(0))
        return CampaignMoney(
            True,
            counts["approved"],
            counts["submitted"],
            each * counts["approved"] + bonuses,
            each * counts["submitted"],
            bonuses,
            platform=self.label,
            noun="assignment",
            basis="rewards with MTurk's commission",
        )

    # Workers and HITs ------------------------------------------------------------------------------------------

    def block(self, worker: Worker, *, block: bool, reason: str) -> None:
        """A worker block (CreateWorkerBlock) keeps them from all of this requester's HITs, in the
        environment they belong to."""
        if worker.environment not in (SANDBOX, PRODUCTION):
            raise CrowdError(f"Worker {worker.external_id} has no MTurk environment on record; block them on MTurk.")
        with mturk_errors():
            client = self.client(worker.environment)
            (mturk.block_worker if block else mturk.unblock_worker)(client, worker.external_id, reason)

    def hits_change(self, campaign: Campaign, action: str, *, hours: int) -> LifecycleReport:
        if action not in LIFECYCLE:
            raise CrowdError(f"Unknown HIT action {action!r}: use {', '.join(LIFECYCLE)}.")
        if action == "extend" and not 1 <= hours <= 365 * 24:
            raise CrowdError("Extend by between 1 hour and a year.")
        with mturk_errors():
            return hits_change(campaign=campaign, action=action, client=self.client(campaign.environment), hours=hours)

    # What the dashboard and the site show ------------------------------------------------------------------

    def dashboard_context(self, campaign: Campaign) -> dict[str, Any]:
        rows = campaign.hits.exclude(remote_status="").values("remote_status").annotate(n=Count("id"))
        states = {row["remote_status"]: row["n"] for row in rows.order_by("remote_status")}
        return {"hit_type_id": MTurkState.of(campaign).hit_type_id, "hit_states": states}

    def urls(self) -> list[URLPattern]:
        return [path("hit/<uuid:key>/", pages.mturk_hit, name="mturk-hit")]
