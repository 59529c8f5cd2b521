"""What a campaign does on its crowd's platform, one service per action, for the commands, the
dashboard and the periodic task alike: publish (plan first), sync, decide by the platform's id, and
the HITs' lifecycle. Each finds the campaign's crowd (`crowd_for`) and lets it speak to its platform;
a refusal comes back as an `ActionRefused` carrying the platform's words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from annotator.crowds import PublishPlan, backend_named, crowd_for, crowd_named
from annotator.models import Campaign, ReviewAction
from annotator.services.campaigns import CampaignError, campaign_check_backend, campaign_claim, campaign_mark_published
from annotator.services.review import Reviewer


def publish_plan(*, campaign: Campaign, backend: str, options: dict[str, Any]) -> PublishPlan:
    """Check a publish request (a campaign runs on one crowd; its options, the URL first) and price it,
    before anything is created."""
    chosen = backend_named(backend)
    if campaign.status == Campaign.Status.FINISHED:
        raise CampaignError(f"Campaign {campaign.name!r} is finished.")
    campaign_check_backend(campaign, chosen)
    return crowd_named(chosen.platform).publish_plan(campaign, chosen, options)


def campaign_publish(
    *, campaign: Campaign, plan: PublishPlan, actor: str, progress: Callable[[int], None] | None = None
) -> list[str]:
    """Publish as planned (the caller showed the plan and, where money is spent, had it confirmed). Safe
    to run again: nothing is created twice. Lines to show."""
    if not plan.enough:
        raise CampaignError("The account balance does not cover this campaign; nothing was created.")
    lines = crowd_named(plan.backend.platform).publish(campaign, plan, actor=actor, progress=progress)
    campaign.refresh_from_db()
    campaign_claim(campaign, plan.backend)
    campaign_mark_published(campaign)
    return lines


def campaign_sync(*, campaign: Campaign, adopt: bool = False) -> list[str]:
    """Mirror the platform's view of the campaign (answers it confirms, decisions made there)."""
    return crowd_for(campaign).sync(campaign, adopt=adopt)


def campaign_decide(
    *, campaign: Campaign, ident: str, approve: bool, reviewer: Reviewer, feedback: str = "", category: str = ""
) -> str:
    """Approve or reject by the platform's id (an assignment, or a participant whose whole submission is
    decided, as the crowd decides). Returns what was done."""
    feedback = feedback.strip()
    if not approve and not feedback:
        raise CampaignError("Write the feedback the rejected worker will read.")
    return crowd_for(campaign).decide(
        campaign=campaign, ident=ident, approve=approve, reviewer=reviewer, feedback=feedback, category=category
    )


def campaign_hits_change(*, campaign: Campaign, action: str, actor: str, hours: int = 24) -> tuple[int, list[str]]:
    """Expire, extend (by `hours`) or delete the campaign's HITs on its platform; (done, refusals)."""
    report = crowd_for(campaign).hits_change(campaign, action, hours=hours)
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
    return report.done, report.refused
