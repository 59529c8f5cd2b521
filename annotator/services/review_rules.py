"""Reviewing many answers at once by rule: the answers that fail a check of their task (the describe
task's: gold images left unmarked, an empty or nonsense description, too little time spent) are
rejected with one message; the ones that pass every check are approved. Each is the one-answer
action, so each is recorded and carried out on the platform; a crowd that decides whole
submissions decides those instead (`Crowd.review_by_rule`). `campaign_review_by_rule` is the one
entry the command and the dashboard use."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

from annotator.crowds import crowd_for
from annotator.models import Answer, Campaign
from annotator.services import review
from annotator.task_kinds import Task, task_for, tasks


def all_rules() -> tuple[str, ...]:
    """Every rule some HIT task offers (what the command accepts)."""
    return tuple(dict.fromkeys(rule for task in tasks().values() for rule in task.rules))


def rules_check(task: Task, rules: list[str]) -> None:
    unknown = [r for r in rules if r not in task.rules]
    if unknown:
        raise review.ReviewError(f"Unknown rule(s) {', '.join(unknown)}: use {', '.join(task.rules)}.")


@dataclass(frozen=True)
class RuleReview:
    """What a reviewer asks: reject the answers failing any of `reject_rules` (with `feedback`, which
    the workers read), approve those passing every rule if `approve_passing`; `dry_run` only counts."""

    reject_rules: list[str]
    approve_passing: bool
    feedback: str = ""
    min_seconds: float = 20.0
    dry_run: bool = False


@dataclass
class RuleOutcome:
    approved: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    noun: str = "answers"  # what was decided: answers, or participants' submissions


def campaign_review_by_rule(*, campaign: Campaign, reviewer: review.Reviewer, request: RuleReview) -> RuleOutcome:
    """Decide the campaign's answers by rule, through its crowd. Rejecting needs the words the workers
    will read (a preview rejects nobody); choosing nothing to do is refused."""
    request = replace(request, feedback=request.feedback.strip())
    if request.reject_rules and not request.feedback and not request.dry_run:
        raise review.ReviewError("Write the feedback the rejected workers will read.")
    if not request.reject_rules and not request.approve_passing:
        raise review.ReviewError("Choose rules to reject by, or approve the answers that pass every rule.")
    rules_check(task_for(campaign), request.reject_rules)
    crowd = crowd_for(campaign)
    outcome = crowd.review_by_rule(campaign=campaign, reviewer=reviewer, request=request)
    outcome.noun = crowd.decision_noun
    return outcome


def answers_review_by_rule(*, campaign: Campaign, reviewer: review.Reviewer, request: RuleReview) -> RuleOutcome:
    """One answer at a time: reject those that fail any of the rules, approve those that pass every
    rule where asked. A refused action (the platform said no) is reported, the rest go on."""
    task = task_for(campaign)
    outcome = RuleOutcome()
    # Only answers the platform confirmed: an unconfirmed one may never have been an assignment.
    answers = Answer.objects.filter(
        hit__campaign=campaign, review=Answer.Review.SUBMITTED, confirmation=Answer.Confirmation.CONFIRMED
    ).order_by("id")
    for answer in answers:
        failed = task.failed_rules(answer, request.min_seconds)
        hits = [r for r in failed if r in request.reject_rules]
        if hits:
            target = outcome.rejected
            act = functools.partial(
                review.answer_reject,
                answer_id=answer.pk,
                reviewer=reviewer,
                feedback=f"{request.feedback} ({', '.join(hits)})",
            )
        elif request.approve_passing and not failed:
            target, act = (
                outcome.approved,
                functools.partial(review.answer_approve, answer_id=answer.pk, reviewer=reviewer),
            )
        else:
            continue
        if request.dry_run:
            target.append(answer.pk)
            continue
        try:
            act()
            target.append(answer.pk)
        except review.ReviewError as error:
            outcome.refused.append(f"answer {answer.pk}: {error}")
    return outcome
