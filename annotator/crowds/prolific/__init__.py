"""Prolific as a crowd: one study a campaign (`study`); a participant answers a share of its HITs one
after another on our pages (`sessions`, `pages`) and returns with the completion code. Answers count
once sync finds the participant's submission; decisions are per submission and final, so Prolific's
rules are checked before any call (`review`); bonuses go out in bulk."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.db.models import Count, Q
from django.urls import URLPattern, path

from annotator.crowds.base import Backend, CampaignMoney, Crowd, CrowdError, Option, PublishPlan
from annotator.crowds.options import SHARED, int_or_none
from annotator.crowds.prolific import pages
from annotator.crowds.prolific.common import NAME, ProlificState, fee, prolific_client, prolific_errors
from annotator.crowds.prolific.review import (
    AWAITING,
    prolific_block,
    prolific_decide,
    prolific_pay_bonuses,
    prolific_review_by_rule,
)
from annotator.crowds.prolific.study import campaign_publish_prolific, campaign_sync_prolific, settings_from, study_plan
from annotator.models import Bonus, Campaign, ProlificSession, Worker
from annotator.services.review import Reviewer
from annotator.services.review_rules import RuleOutcome, RuleReview
from prolific.client import REJECTION_CATEGORIES, REJECTION_WORDS


class ProlificCrowd(Crowd):
    name = NAME
    label = "Prolific"
    backends = (Backend(NAME, NAME, "", "Prolific"),)
    confirms = True
    syncs = True
    decides_per = "submission"
    decision_noun = "participants' submissions"
    bonus_per = "worker"
    dashboard_template = "crowds/prolific/campaign.html"

    # Publishing -----------------------------------------------------------------------------------------

    def publish_options(self) -> list[Option]:
        return [
            *SHARED,
            Option(
                ("--hits-per-participant",),
                {"type": int, "help": "Prolific: HITs one participant answers (10; places = answers needed / this)"},
            ),
            Option(
                ("--minutes-per-hit",),
                {"type": int, "help": "Prolific: the estimated time of one HIT (2), for the study's estimated time"},
            ),
            Option(
                ("--min-previous-submissions",),
                {
                    "type": int_or_none,
                    "help": "Prolific: approved submissions a participant has made (100; 'none' to drop)",
                },
            ),
            Option(("--language",), {"help": "Prolific: choice ids of its fluent-languages filter, comma-separated"}),
        ]

    def publish_plan(self, campaign: Campaign, backend: Backend, options: dict[str, Any]) -> PublishPlan:
        from django.conf import settings

        chosen = settings_from(options, local_service=settings.PROLIFIC_API_URL)  # the URL before any call
        plan = study_plan(campaign=campaign, settings=chosen, client=prolific_client())
        return PublishPlan(
            backend=backend,
            where="Prolific (real money)",
            text=plan.describe(),
            total=plan.total,
            spends_money="Prolific",
            settings=chosen,
            detail=plan,
        )

    def publish(
        self, campaign: Campaign, plan: PublishPlan, *, actor: str, progress: Callable[[int], None] | None = None
    ) -> list[str]:
        with prolific_errors():
            report = campaign_publish_prolific(
                campaign=campaign,
                backend=plan.backend,
                settings=plan.settings,
                client=prolific_client(),
                actor=actor,
                plan=plan.detail,
            )
        made = "created" if report.created else "found (made by an earlier run)"
        went = "published now" if report.published else "published already"
        return [
            f"Study {report.study_id}: {made}, {went}, {report.places} places. Next: manage.py sync {campaign.name}"
        ]

    # Trust and sync ---------------------------------------------------------------------------------------

    def sync(self, campaign: Campaign, *, adopt: bool = False) -> list[str]:
        with prolific_errors():
            return campaign_sync_prolific(campaign=campaign, client=prolific_client()).lines()

    # Decisions: per submission ----------------------------------------------------------------------------

    def review_by_rule(self, *, campaign: Campaign, reviewer: Reviewer, request: RuleReview) -> RuleOutcome:
        return prolific_review_by_rule(campaign=campaign, reviewer=reviewer, request=request, client=prolific_client())

    def decide(
        self, *, campaign: Campaign, ident: str, approve: bool, reviewer: Reviewer, feedback: str, category: str = ""
    ) -> str:
        """By participant id: Prolific decides their whole submission."""
        prolific_decide(
            campaign=campaign,
            participant_id=ident,
            approve=approve,
            reviewer=reviewer,
            client=prolific_client(),
            feedback=feedback,
            category=category or "OTHER",
        )
        return f"{'approved' if approve else 'rejected'} {ident}"

    def rejection_categories(self) -> tuple[str, ...]:
        return REJECTION_CATEGORIES

    # Money ------------------------------------------------------------------------------------------------

    def bonus_workers(self, campaign: Campaign, bonuses: list[Bonus]) -> str:
        if not ProlificState.of(campaign).study_id:
            raise CrowdError(f"Campaign {campaign.name!r} has no Prolific study yet: publish it first.")
        return prolific_pay_bonuses(campaign, bonuses, prolific_client())

    def money(self, campaign: Campaign) -> CampaignMoney:
        """Prolific pays per participant (their submission), with its service fee on rewards and bonuses:
        spent on approved submissions, owed on those awaiting review (Prolific approves them itself after
        its review period)."""
        reward = ProlificState.of(campaign).reward
        sessions = ProlificSession.objects.filter(campaign=campaign)
        approved = sessions.filter(Q(reviewed="approved") | Q(status="APPROVED")).count()
        awaiting = sessions.filter(status=AWAITING, reviewed="").count()
        paid = Bonus.objects.filter(answer__hit__campaign=campaign, paid=True).values_list("amount", flat=True)
        bonuses = sum((fee(b) for b in paid), Decimal(0))
        return CampaignMoney(
            True,
            approved,
            awaiting,
            fee(reward) * approved + bonuses,
            fee(reward) * awaiting,
            bonuses,
            platform=self.label,
            noun="submission",
            basis="rewards and bonuses with Prolific's service fee",
        )

    # Workers ----------------------------------------------------------------------------------------------

    def block(self, worker: Worker, *, block: bool, reason: str) -> None:
        prolific_block(worker=worker, block=block, client=prolific_client())

    # What the dashboard and the site show ------------------------------------------------------------------

    def dashboard_context(self, campaign: Campaign) -> dict[str, Any]:
        sessions = list(
            ProlificSession.objects.filter(campaign=campaign)
            .select_related("worker")
            .annotate(answers=Count("worker__answers", filter=Q(worker__answers__hit__campaign=campaign)))
            .order_by("started_at")
        )
        return {
            "state": ProlificState.of(campaign),
            "sessions": sessions,
            "rejection_categories": [(code, REJECTION_WORDS.get(code, code)) for code in REJECTION_CATEGORIES],
        }

    def urls(self) -> list[URLPattern]:
        return [
            path("prolific/<int:campaign_id>/", pages.start, name="prolific-start"),
            path("prolific/<int:campaign_id>/hit/", pages.hit, name="prolific-hit"),
        ]

    def register_admin(self, site: AdminSite) -> None:
        site.register(ProlificSession, ProlificSessionAdmin)


class ProlificSessionAdmin(admin.ModelAdmin):
    """Prolific participants' turns, as sync mirrors them: read only (Prolific is the source)."""

    list_display = ("worker", "campaign", "status", "reviewed", "started_at", "finished_at")
    list_filter = ("campaign", "status", "reviewed")
    list_select_related = ("worker", "campaign")
    search_fields = ("worker__external_id", "session_id")

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False
