"""Reviewing many answers at once by rule: the answers that fail a check of their task (the describe
task's: gold images left unmarked, an empty or nonsense description, too little time spent) are
rejected with one message; the ones that pass every check are approved. Each is the one-answer
action, so each is recorded and carried out on the platform; a crowd that decides whole
submissions decides those instead (`Crowd.review_by_rule`). `campaign_review_by_rule` is the one
entry the command and the dashboard use."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class RuleOutcome:
    approved: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    noun: str = "answers"  # what was decided: answers, or participants' submissions


def campaign_review_by_rule(
    *,
    campaign: Campaign,
    reviewer: review.Reviewer,
    reject_rules: list[str],
    approve_passing: bool,
    feedback: str,
    min_seconds: float = 20.0,
    dry_run: bool = False,
) -> RuleOutcome:
    """Decide the campaign's answers by rule, through its crowd. Rejecting needs the words the workers
    will read (a preview rejects nobody); choosing nothing to do is refused."""
    feedback = feedback.strip()
    if reject_rules and not feedback and not dry_run:
        raise review.ReviewError("Write the feedback the rejected workers will read.")
    if not reject_rules and not approve_passing:
        raise review.ReviewError("Choose rules to reject by, or approve the answers that pass every rule.")
    rules_check(task_for(campaign), reject_rules)
    crowd = crowd_for(campaign)
    outcome = crowd.review_by_rule(
        campaign=campaign,
        reviewer=reviewer,
        reject_rules=reject_rules,
        approve_passing=approve_passing,
        feedback=feedback,
        min_seconds=min_seconds,
        dry_run=dry_run,
    )
    outcome.noun = crowd.decision_noun
    return outcome


def answers_review_by_rule(
    *,
    campaign: Campaign,
    reviewer: review.Reviewer,
    reject_rules: list[str],
    approve_passing: bool,
    feedback: str,
    min_seconds: float = 20.0,
    dry_run: bool = False,
) -> RuleOutcome:
    """Reject the submitted answers that fail any of `reject_rules`; with `approve_passing`, approve
    those that pass every rule. A refused action (the platform said no) is reported, the rest go on."""
    task = task_for(campaign)
    outcome = RuleOutcome()
    # Only answers the platform confirmed: an unconfirmed one may never have been an assignment.
    answers = Answer.objects.filter(
        hit__campaign=campaign, review=Answer.Review.SUBMITTED, confirmation=Answer.Confirmation.CONFIRMED
    ).order_by("id")
    for answer in answers:
        failed = task.failed_rules(answer, min_seconds)
        hits = [r for r in failed if r in reject_rules]
        if hits:
            target, act = (
                outcome.rejected,
                lambda a=answer, h=hits: review.answer_reject(
                    answer_id=a.pk, reviewer=reviewer, feedback=f"{feedback} ({', '.join(h)})"
                ),
            )
        elif approve_passing and not failed:
            target, act = outcome.approved, lambda a=answer: review.answer_approve(answer_id=a.pk, reviewer=reviewer)
        else:
            continue
        if dry_run:
            target.append(answer.pk)
            continue
        try:
            act()
            target.append(answer.pk)
        except review.ReviewError as error:
            outcome.refused.append(f"answer {answer.pk}: {error}")
    return outcome
