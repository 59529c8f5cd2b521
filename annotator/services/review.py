"""A reviewer's decisions on units and answers. The crowd's values stay as aggregation computes them;
a decision is kept beside them (review_* fields) and every action is recorded with who and when.

Where the answer's crowd decides on its platform too, the platform's call is made first
(`Crowd.answer_rejecting`, `answer_approving`, `more_answers`), so a refused call changes nothing here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotator.crowds import CrowdError, crowd_for, crowd_for_answer
from annotator.errors import ActionRefused
from annotator.forms import description_clean
from annotator.models import Answer, Assignment, Category, Hit, ReviewAction, UnitLabel, unit_name
from annotator.services.aggregation import units_aggregate
from annotator.services.answers import answer_units, answers_settle, hit_answers_settle

LABEL_MAX = 200
FEEDBACK_MAX = 1024


class ReviewError(ActionRefused):
    """A review action that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Reviewer:
    """Who acts: the name kept with each decision."""

    name: str


def _label(unit_id: int) -> UnitLabel:
    label = UnitLabel.objects.select_for_update().filter(unit_id=unit_id).first()
    if label is None:
        raise ReviewError("This unit has no answers yet: there is nothing to review.")
    return label


def _stamp(label: UnitLabel, reviewer: Reviewer) -> None:
    label.reviewed_by = reviewer.name
    label.reviewed_at = timezone.now()
    label.save()


def unit_accept(*, unit_id: int, reviewer: Reviewer) -> UnitLabel:
    """Pin the crowd's label, category and status as the reviewed ones. A detector whose category
    was split becomes a plain detector of the majority (or most frequent) category."""
    with transaction.atomic():
        label = _label(unit_id)
        if label.status == UnitLabel.Status.PENDING:
            raise ReviewError(
                f"{unit_name(unit_id)} still waits for answers ({label.answers} of {label.answers_needed}); "
                "accept it once they are in."
            )
        label.review_label, label.review_category = label.label, label.category
        label.review_status = (
            UnitLabel.Status.DETECTOR if label.status == UnitLabel.Status.NEEDS_REVIEW else label.status
        )
        _stamp(label, reviewer)
        ReviewAction.objects.create(
            actor=reviewer.name,
            action=ReviewAction.Action.ACCEPT,
            unit_id=unit_id,
            details={"label": label.label, "category": label.category, "status": label.review_status},
        )
    return label


def unit_override(*, unit_id: int, reviewer: Reviewer, label: str = "", category: str = "") -> UnitLabel:
    """A reviewer's own label and/or category; settling the category of a split detector makes it a
    detector. An empty value leaves that field as it was."""
    label_text = " ".join(label.split())
    if not label_text and not category:
        raise ReviewError("Give a label, a category or both to override.")
    if label_text:
        try:  # the rules a worker's description meets, at the stored label's length
            label_text = description_clean(label_text, LABEL_MAX)
        except ValidationError as error:
            raise ReviewError(" ".join(error.messages)) from None
    if category and category not in Category.values:
        raise ReviewError(f"Unknown category {category!r}: use one of {', '.join(Category.values)}.")
    with transaction.atomic():
        row = _label(unit_id)
        if label_text:
            row.review_label = label_text
        if category:
            row.review_category = category
            if row.status == UnitLabel.Status.NEEDS_REVIEW:
                row.review_status = UnitLabel.Status.DETECTOR
        _stamp(row, reviewer)
        ReviewAction.objects.create(
            actor=reviewer.name,
            action=ReviewAction.Action.OVERRIDE,
            unit_id=unit_id,
            details={
                "label": label_text,
                "category": category,
                "crowd_label": row.label,
                "crowd_category": row.category,
            },
        )
    return row


def unit_send_back(*, unit_id: int, reviewer: Reviewer, more: int = 1, campaign: str = "") -> Hit:
    """Ask for `more` answers in one campaign (the reviewer names it where the unit is in several): the
    unit's HIT there takes that many more workers (asked of its platform first, where it has one), and
    the unit turns pending until they answer. A reviewer's override of the label and category is a
    decision, and stays; only the reviewed status goes, as the answers will decide it again."""
    if not 1 <= more <= 20:
        raise ReviewError("Ask for between 1 and 20 more answers.")
    hits = list(
        Hit.objects.select_related("campaign")
        .filter(unit_id=unit_id)
        .exclude(campaign__status="draft")
        .order_by("-campaign__published_at", "-id")
    )
    if not hits:
        raise ReviewError(
            f"{unit_name(unit_id)} is in no published campaign (its answers were imported?): create and "
            "publish a campaign with its layer to collect more answers."
        )
    if campaign:
        hits = [hit for hit in hits if hit.campaign.name == campaign]
        if not hits:
            raise ReviewError(f"{unit_name(unit_id)} has no HIT in a published campaign named {campaign!r}.")
    elif len({hit.campaign_id for hit in hits}) > 1:
        names = ", ".join(dict.fromkeys(hit.campaign.name for hit in hits))
        raise ReviewError(f"{unit_name(unit_id)} is in several campaigns ({names}): choose the one to send it back to.")
    hit = hits[0]
    if hit.campaign.status == hit.campaign.Status.FINISHED:
        raise ReviewError(f"Campaign {hit.campaign.name} is finished; its HITs take no more answers.")
    with _platform_first():
        crowd_for(hit.campaign).more_answers(hit, more)
    with transaction.atomic():
        Hit.objects.filter(pk=hit.pk).update(extra_answers=hit.extra_answers + more)
        label = UnitLabel.objects.filter(unit_id=unit_id).first()
        kept = {"label": label.review_label, "category": label.review_category} if label else {}
        UnitLabel.objects.filter(unit_id=unit_id).update(
            review_status="", reviewed_by=reviewer.name, reviewed_at=timezone.now()
        )
        ReviewAction.objects.create(
            actor=reviewer.name,
            action=ReviewAction.Action.SEND_BACK,
            unit_id=unit_id,
            details={"more": more, "campaign": hit.campaign.name, "override kept": kept if any(kept.values()) else ""},
        )
        hit_answers_settle(hit.pk)  # an answer kept beyond the old count may be wanted now
    units_aggregate(unit_ids=[unit_id])
    hit.refresh_from_db()
    return hit


@contextmanager
def _platform_first() -> Iterator[None]:
    """The platform's side of a decision, made before ours: its refusal changes nothing here, and comes
    back as this service's error, in the platform's words."""
    try:
        yield
    except CrowdError as error:
        raise ReviewError(str(error)) from error


def _answer(answer_id: int) -> Answer:
    answer = Answer.objects.select_related("assignment", "hit__campaign").filter(pk=answer_id).first()
    if answer is None:
        raise ReviewError(f"There is no answer {answer_id}.")
    return answer


def answer_reject(*, answer_id: int, reviewer: Reviewer, feedback: str) -> Answer:
    """Leave an answer out of aggregation. Its HIT gets the answer slot back where it holds one (another
    worker will answer); on a platform that decides answers it is rejected there first, with the
    feedback, which the worker sees. Rejecting twice changes nothing."""
    feedback = " ".join(feedback.split())
    if not feedback:
        raise ReviewError("Say why: the feedback is shown to the worker.")
    if len(feedback) > FEEDBACK_MAX:
        raise ReviewError(f"Feedback has at most {FEEDBACK_MAX} characters.")
    answer = _answer(answer_id)
    if answer.review == Answer.Review.REJECTED:
        return answer
    with _platform_first():
        crowd_for_answer(answer).answer_rejecting(answer, feedback)
    with transaction.atomic():
        Answer.objects.filter(pk=answer.pk).update(review=Answer.Review.REJECTED, feedback=feedback)
        if answer.assignment_id:  # a pool's answer slot goes back to the pool (a platform's assignment holds none)
            Assignment.objects.filter(pk=answer.assignment_id).update(slot=None)
        ReviewAction.objects.create(
            actor=reviewer.name,
            action=ReviewAction.Action.REJECT,
            unit_id=answer.unit_id,
            answer=answer,
            worker_id=answer.worker_id,
            details={"feedback": feedback},
        )
        answers_settle([answer.pk])
    units_aggregate(unit_ids=answer_units(answer))
    answer.refresh_from_db()
    return answer


def answer_approve(*, answer_id: int, reviewer: Reviewer, feedback: str = "") -> Answer:
    """Accept an answer (where approving pays, pay it). A rejected answer can be approved after
    all where the platform allows it (`Crowd.approves_rejected`); approving twice changes nothing."""
    feedback = " ".join(feedback.split())[:FEEDBACK_MAX]
    answer = _answer(answer_id)
    if answer.review == Answer.Review.APPROVED:
        return answer
    with _platform_first():
        crowd_for_answer(answer).answer_approving(answer, feedback)
    was_rejected = answer.review == Answer.Review.REJECTED
    with transaction.atomic():
        Answer.objects.filter(pk=answer.pk).update(review=Answer.Review.APPROVED, feedback=feedback or answer.feedback)
        ReviewAction.objects.create(
            actor=reviewer.name,
            action=ReviewAction.Action.APPROVE,
            unit_id=answer.unit_id,
            answer=answer,
            worker_id=answer.worker_id,
            details={"feedback": feedback},
        )
        answers_settle([answer.pk])
    if was_rejected:
        units_aggregate(unit_ids=answer_units(answer))
    answer.refresh_from_db()
    return answer
