"""Reviewing many answers at once by rule: the answers that fail a check (gold images left unmarked,
an empty or nonsense description, too little time spent) are rejected with one message; the ones
that pass every check are approved. Each is the one-answer action, so each is recorded and, on
MTurk, carried out there."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from annotator.labels import normalise
from annotator.models import Answer, Campaign
from annotator.selectors.dashboard import seconds_spent
from annotator.services import review

RULES = ("gold-failed", "empty", "nonsense", "too-fast")
NONSENSE = {
    "none",
    "nothing",
    "no",
    "na",
    "n a",
    "idk",
    "dont know",
    "don t know",
    "unknown",
    "asdf",
    "test",
    "xxx",
    "yes",
    "ok",
    "good",
    "nice",
    "image",
    "picture",
    "thing",
    "stuff",
}
_REPEATS = re.compile(r"^(.)\1+$")


def failed_rules(answer: Answer, min_seconds: float = 20.0) -> list[str]:
    """The checks this answer fails, by name (empty when it passes all)."""
    failed = []
    if answer.gold_total and answer.gold_marked < answer.gold_total:
        failed.append("gold-failed")
    words = normalise(answer.description)
    if not words:
        failed.append("empty")
    elif (
        words in NONSENSE
        or _REPEATS.match(words.replace(" ", ""))
        or not re.search(r"[a-z]{2}", words)
        or (len(words) > 5 and not re.search(r"[aeiouy]", words))
    ):
        failed.append("nonsense")
    spent = seconds_spent(answer)
    if spent is not None and spent < min_seconds:
        failed.append("too-fast")
    return failed


@dataclass
class RuleOutcome:
    approved: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


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
    those that pass every rule. A refused action (MTurk said no) is reported, the rest go on."""
    unknown = [r for r in reject_rules if r not in RULES]
    if unknown:
        raise review.ReviewError(f"Unknown rule(s) {', '.join(unknown)}: use {', '.join(RULES)}.")
    outcome = RuleOutcome()
    # Only answers the platform confirmed: an unconfirmed one may never have been an assignment.
    answers = Answer.objects.filter(
        hit__campaign=campaign, review=Answer.Review.SUBMITTED, confirmation=Answer.Confirmation.CONFIRMED
    ).order_by("id")
    for answer in answers:
        failed = failed_rules(answer, min_seconds)
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
