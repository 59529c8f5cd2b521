"""The three crowds behind one small interface: local annotators, Mechanical Turk and Prolific.
Commands, views and tasks ask this module to sync a campaign, decide its answers by rule, or block a
worker, and it builds the platform's client from the environment (MTURK_ENDPOINT_URL, PROLIFIC_TOKEN,
PROLIFIC_API_URL): no caller builds one itself. Publishing keeps a function per platform, since each
takes its own settings (`mturk_hits`, `prolific_study`)."""

from __future__ import annotations

from annotator.models import Campaign, Worker
from annotator.services import review
from annotator.services.campaigns import CampaignError
from annotator.services.review_rules import RuleOutcome, answers_review_by_rule
from mturk import client as mturk
from prolific import client as prolific


class CrowdError(Exception):
    """The platform refused or could not be reached; the message says which call and why."""


def mturk_client(campaign: Campaign | str):
    """The MTurk client for a campaign's backend (or a backend's name, before a campaign has one)."""
    return mturk.connect(campaign if isinstance(campaign, str) else campaign.backend)


def prolific_client() -> prolific.ProlificClient:
    try:
        return prolific.connect()
    except prolific.ProlificError as error:
        raise CrowdError(str(error)) from error


def crowd_sync(campaign: Campaign, *, adopt: bool = False) -> list[str]:
    """Mirror the platform's view of the campaign; lines to show the researcher."""
    from annotator.services.mturk_sync import campaign_sync
    from annotator.services.prolific_study import campaign_sync_prolific

    try:
        if campaign.on_mturk:
            return campaign_sync(campaign=campaign, client=mturk_client(campaign), adopt=adopt).lines()
        if campaign.on_prolific:
            return campaign_sync_prolific(campaign=campaign, client=prolific_client()).lines()
    except (mturk.MTurkError, prolific.ProlificError) as error:
        raise CrowdError(str(error)) from error
    raise CampaignError(f"Campaign {campaign.name!r} is not on Mechanical Turk or Prolific: there is nothing to sync.")


def crowd_review_by_rule(
    *,
    campaign: Campaign,
    reviewer: review.Reviewer,
    reject_rules: list[str],
    approve_passing: bool,
    feedback: str,
    min_seconds: float = 20.0,
    dry_run: bool = False,
) -> RuleOutcome:
    """Decide a campaign's answers by rule: per answer locally and on MTurk, per submission on Prolific."""
    if campaign.on_prolific:
        from annotator.services.prolific_review import prolific_review_by_rule

        return prolific_review_by_rule(
            campaign=campaign,
            reviewer=reviewer,
            reject_rules=reject_rules,
            approve_passing=approve_passing,
            feedback=feedback,
            min_seconds=min_seconds,
            dry_run=dry_run,
            client=prolific_client(),
        )
    return answers_review_by_rule(
        campaign=campaign,
        reviewer=reviewer,
        reject_rules=reject_rules,
        approve_passing=approve_passing,
        feedback=feedback,
        min_seconds=min_seconds,
        dry_run=dry_run,
    )


def crowd_block(worker: Worker, *, block: bool, reason: str) -> None:
    """The platform's side of blocking a worker (ours is `workers.worker_block`, which calls this first)."""
    try:
        if worker.kind == Worker.Kind.MTURK:
            backend = (
                worker.assignments.order_by("-opened_at").values_list("hit__campaign__backend", flat=True).first()
                or "sandbox"
            )
            client = mturk.connect(backend)
            (mturk.block_worker if block else mturk.unblock_worker)(client, worker.external_id, reason)
        elif worker.kind == Worker.Kind.PROLIFIC:
            from annotator.services.prolific_review import prolific_block

            prolific_block(worker=worker, block=block, client=prolific_client())
    except (mturk.MTurkError, prolific.ProlificError) as error:
        raise CrowdError(str(error)) from error
