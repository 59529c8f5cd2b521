"""Deciding, paying and blocking on Prolific, by the same rules as on MTurk.

Prolific decides per submission (one participant's whole turn, up to `hits_per_participant` HITs),
while our rules judge each answer. An answer that fails a rule is rejected here (it stops counting
and its HIT goes to another participant); the submission is rejected on Prolific only when at least
half of its answers fail, with the rule's rejection category, and approved otherwise. Prolific's
decisions cannot be undone, so its rules are checked before any call: a rejection needs at least
100 characters of explanation and a category. Bonuses go out in bulk."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from annotator.crowds.base import CrowdConfigError, CrowdError
from annotator.crowds.prolific.common import ProlificState, prolific_errors
from annotator.models import Answer, Assignment, Bonus, Campaign, ProlificSession, ReviewAction, Worker
from annotator.services.aggregation import units_aggregate
from annotator.services.answers import answers_settle
from annotator.services.review import Reviewer
from annotator.services.review_rules import RuleOutcome, RuleReview, rules_check
from annotator.task_kinds import task_for
from prolific.client import REJECTION_CATEGORIES, REJECTION_MESSAGE_MIN, ProlificApi

RULE_CATEGORY = {
    "gold-failed": "FAILED_CHECK",
    "empty": "LOW_EFFORT",
    "nonsense": "LOW_EFFORT",
    "too-fast": "TOO_QUICKLY",
    "marked-all": "LOW_EFFORT",
    "all-same": "LOW_EFFORT",
}
AWAITING = "AWAITING REVIEW"
BLOCK_GROUP = "unit-annotator: blocked participants"


def _check_rejection(feedback: str, category: str = "OTHER") -> None:
    if len(feedback.strip()) < REJECTION_MESSAGE_MIN:
        raise CrowdError(
            f"Prolific needs a rejection explained in at least {REJECTION_MESSAGE_MIN} "
            f"characters ({len(feedback.strip())} given); the participant reads it."
        )
    if category not in REJECTION_CATEGORIES:
        raise CrowdError(f"Unknown rejection category {category!r}: use one of {', '.join(REJECTION_CATEGORIES)}.")


def _sessions(campaign: Campaign) -> list[ProlificSession]:
    return list(
        ProlificSession.objects.filter(campaign=campaign, status=AWAITING, reviewed="")
        .select_related("worker")
        .order_by("id")
    )


def prolific_review_by_rule(
    *, campaign: Campaign, reviewer: Reviewer, request: RuleReview, client: ProlificApi
) -> RuleOutcome:
    """Decide every submission that awaits review (as of the last sync) by the rules."""
    task = task_for(campaign)
    reject_rules, feedback = request.reject_rules, request.feedback
    rules_check(task, reject_rules)
    if reject_rules and not request.dry_run:
        _check_rejection(feedback)
    outcome = RuleOutcome()
    for session in _sessions(campaign):
        answers = list(
            Answer.objects.filter(
                worker=session.worker, hit__campaign=campaign, confirmation=Answer.Confirmation.CONFIRMED
            ).order_by("id")
        )
        if not answers:  # a code reached without work (or only answers Prolific does not vouch for)
            outcome.refused.append(
                f"participant {session.worker.external_id}: no confirmed answer here, so never approved "
                "(reject it by hand with Prolific's reason 'No data' if it should be)"
            )
            continue
        failing = {a.pk: [r for r in task.failed_rules(a, request.min_seconds) if r in reject_rules] for a in answers}
        failing = {pk: rules for pk, rules in failing.items() if rules}
        reject_all = bool(answers) and 2 * len(failing) >= len(answers)
        if not reject_all and not request.approve_passing:
            continue
        if request.dry_run:
            (outcome.rejected if reject_all else outcome.approved).append(session.pk)
            continue
        rules = sorted({r for found in failing.values() for r in found})
        try:
            _decide(
                session,
                approve=not reject_all,
                feedback=feedback,
                reviewer=reviewer,
                client=client,
                category=RULE_CATEGORY.get(rules[0], "OTHER") if rules else "OTHER",
                failing=failing,
            )
        except CrowdError as error:
            outcome.refused.append(f"participant {session.worker.external_id}: {error}")
            continue
        (outcome.rejected if reject_all else outcome.approved).append(session.pk)
    return outcome


def prolific_decide(
    *,
    campaign: Campaign,
    participant_id: str,
    approve: bool,
    reviewer: Reviewer,
    client: ProlificApi,
    feedback: str = "",
    category: str = "OTHER",
) -> ProlificSession:
    """Approve or reject one participant's submission by hand."""
    session = (
        ProlificSession.objects.filter(campaign=campaign, worker__external_id=participant_id)
        .select_related("worker")
        .first()
    )
    if session is None:
        raise CrowdError(f"No participant {participant_id!r} took campaign {campaign.name!r}.")
    if not approve:
        _check_rejection(feedback, category or "OTHER")
    _decide(
        session,
        approve=approve,
        feedback=feedback,
        reviewer=reviewer,
        client=client,
        category=category or "OTHER",
        failing={},
    )
    session.refresh_from_db()
    return session


def _decide(
    session: ProlificSession,
    *,
    approve: bool,
    feedback: str,
    reviewer: Reviewer,
    client: ProlificApi,
    category: str,
    failing: dict[int, list[str]],
) -> None:
    """Prolific's call first (it cannot be undone, and a refusal changes nothing here), then ours."""
    if session.reviewed:
        raise CrowdError(f"The submission is {session.reviewed} already; Prolific's decisions are final.")
    if session.status != AWAITING:
        raise CrowdError(
            f"The submission is {session.status or 'not listed yet'} on Prolific (sync first): "
            "only one awaiting review can be decided."
        )
    if approve and not Answer.objects.filter(worker=session.worker, hit__campaign=session.campaign).exists():
        raise CrowdError("The submission has no answers here: a submission without answers is never approved.")
    with prolific_errors():
        if approve:
            client.approve(session.session_id)
        else:
            client.reject(session.session_id, feedback, category)
    answers = Answer.objects.filter(worker=session.worker, hit__campaign=session.campaign)
    rejected = set(answers.values_list("pk", flat=True)) if not approve else set(failing)
    with transaction.atomic():
        ProlificSession.objects.filter(pk=session.pk).update(
            reviewed="approved" if approve else "rejected", status="APPROVED" if approve else "REJECTED"
        )
        answers.filter(pk__in=rejected).update(review=Answer.Review.REJECTED, feedback=feedback[:1024])
        answers.exclude(pk__in=rejected).exclude(review=Answer.Review.REJECTED).update(review=Answer.Review.APPROVED)
        Assignment.objects.filter(answer__in=rejected).update(slot=None)  # another participant answers the HIT
        for answer in answers:
            ReviewAction.objects.create(
                actor=reviewer.name,
                unit_id=answer.unit_id,
                answer=answer,
                worker=session.worker,
                action=ReviewAction.Action.REJECT if answer.pk in rejected else ReviewAction.Action.APPROVE,
                details={
                    "prolific": "approved" if approve else "rejected",
                    "rules": failing.get(answer.pk, []),
                    "feedback": feedback if answer.pk in rejected else "",
                },
            )
        units = answers_settle(answers.values_list("pk", flat=True))
    units_aggregate(unit_ids=sorted(units))


def prolific_pay_bonuses(campaign: Campaign, bonuses: list[Bonus], client: ProlificApi) -> str:
    """Bonuses recorded for participants of the campaign's study, set up and paid in one bulk payment."""
    with prolific_errors():
        bulk = client.set_up_bonuses(
            ProlificState.of(campaign).study_id, {b.worker.external_id: b.amount for b in bonuses}
        )
        client.pay_bonuses(bulk["id"])
    return str(bulk["id"])


def block_group(client: ProlificApi) -> dict | None:
    """The workspace's blocklist group (made on first use); None without settings.PROLIFIC_WORKSPACE_ID."""
    workspace = settings.PROLIFIC_WORKSPACE_ID
    if not workspace:
        return None
    with prolific_errors():
        groups = [g for g in client.participant_groups(workspace) if g.get("name") == BLOCK_GROUP]
        return groups[0] if groups else client.create_participant_group(workspace, BLOCK_GROUP)


def prolific_block(*, worker: Worker, block: bool, client: ProlificApi) -> None:
    """Prolific's way: a participant group of the workspace (PROLIFIC_WORKSPACE_ID) that every study
    this tool publishes uses as its blocklist. The group is made on first use."""
    group = block_group(client)
    if group is None:
        raise CrowdConfigError("Set PROLIFIC_WORKSPACE_ID (your Prolific workspace) to block participants there.")
    with prolific_errors():
        if block:
            client.group_add(group["id"], [worker.external_id])
        else:
            client.group_remove(group["id"], [worker.external_id])
