"""Answers: the one way an answer is checked, stored, scored and made to count, whoever sends it (the
local page, a crowd platform's page, sync adopting an answer only the platform has, and imports).
What the form asks and how an answer is scored is the HIT's task's (`annotator.task_kinds`); when an
answer is vouched for is the campaign's crowd's (`annotator.crowds`).

An answer is stored first and never lost, but it counts (for aggregation, its HIT's answer count and
the figures) only once it is trustworthy: the platform confirms it (once sync has seen it on the platform,
where one vouches for answers), nothing held it back (a finished campaign, a blocked worker), no reviewer
rejected it, and its HIT still wanted it. `hit_answers_settle` is the only code that decides
`Answer.counts`; everything that changes one of those facts calls it.

Concurrency: the assignment row is locked while its answer is written (one answer per assignment
is also the answer's one-to-one key), and the HIT row while its answers are settled, so two answers
arriving at once never both take the HIT's last place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotator.crowds import crowd_for
from annotator.errors import ActionRefused
from annotator.models import Answer, Assignment, Campaign, Hit, Worker
from annotator.task_kinds import task_for
from annotator.tasks import enqueue_aggregation

GOLD_TRIES = 3  # as in the authors' form: two warnings, and the third try is stored whatever it marks


class AssignmentError(ActionRefused):
    """A request about an assignment that cannot be honoured; the message is shown to the worker."""


@dataclass
class Submission:
    """The outcome of a submit: the stored answer; or the form to show again (invalid, or a request to
    look at the images again after gold images were left unmarked)."""

    answer: Answer | None
    form: forms.Form
    created: bool = False
    gold_retry: bool = False
    tries_left: int = 0

    @property
    def stored(self) -> Answer:
        """The stored answer (a submission that was shown again has none)."""
        if self.answer is None:
            raise AssignmentError("This answer was not stored.")
        return self.answer

    @property
    def notice(self) -> str:
        """What the worker is told about a stored answer that will not count through no fault of theirs."""
        if self.answer is None or not self.answer.held:
            return ""
        if self.answer.held == Answer.Held.LATE:
            return (
                "The campaign finished before your answer arrived. It is stored, but it no longer counts "
                "towards the unit's label. Thank you for your work."
            )
        return "Your answer is stored, but answers from your account no longer count. Ask the researcher why."


def _held(assignment: Assignment, campaign: Campaign, now: datetime) -> str:
    """Why an answer arriving now is not wanted: a blocked worker's, or one after the campaign finished
    (unless its crowd still takes it: `Crowd.takes_late_answer`)."""
    if assignment.worker.blocked:
        return Answer.Held.BLOCKED
    if campaign.status == Campaign.Status.FINISHED and not crowd_for(campaign).takes_late_answer(assignment, now):
        return Answer.Held.LATE
    return Answer.Held.NONE


def _target(assignment_pk: int) -> Assignment:
    """The locked assignment an answer is stored on. A submission from an old tab names an assignment
    the worker has since given up (returned on the platform, or expired locally) while they hold the same HIT
    again: the answer belongs to the live one, or it would break one-live-assignment-per-worker."""
    assignment = (
        Assignment.objects.select_for_update()
        .select_related("hit__campaign", "worker")
        .filter(pk=assignment_pk)
        .first()
    )
    if assignment is None:
        raise AssignmentError("This assignment does not exist.")
    if assignment.status == Assignment.Status.ABANDONED:
        live = (
            Assignment.objects.select_for_update()
            .select_related("hit__campaign", "worker")
            .filter(hit_id=assignment.hit_id, worker_id=assignment.worker_id)
            .exclude(status=Assignment.Status.ABANDONED)
            .first()
        )
        if live is not None:
            return live
    return assignment


GOLD_WARNING_WINDOW = 24 * 3600  # seconds


def gold_warning_allowed(hit: Hit, client: str) -> bool:
    """A gold warning tells whether some gold image is left unmarked, so warnings asked for again and
    again (under made-up assignments) would reveal the gold: one client address gets at most the
    warnings the HIT's own workers could need (two each) a day; then a try is stored as it is."""
    if not client:
        return True
    from annotator.services.throttle import spend

    budget = (GOLD_TRIES - 1) * hit.answers_wanted
    return spend(f"gold-warning:{hit.pk}:{client}", budget, GOLD_WARNING_WINDOW)


def answer_submit(
    *, assignment_pk: int, data: Mapping, user_agent: str = "", client: str = "", now: datetime | None = None
) -> Submission:
    """Check a HIT form's answer by its task's rules, then store it on the assignment exactly once,
    scored against the HIT's gold images, and queue the unit's aggregation after commit.

    Gold images handled carelessly earn a warning and another try (the form keeps the answers) until
    the last of GOLD_TRIES, which is stored whatever it says, or until the client's warnings for the
    HIT are spent (`gold_warning_allowed`). A repeated submission returns the stored
    answer. On a crowd that confirms answers it is stored unconfirmed; sync confirms it."""
    now = now or timezone.now()
    hit = Hit.objects.select_related("campaign").filter(assignments__pk=assignment_pk).first()
    if hit is None:
        raise AssignmentError("This assignment does not exist.")
    task = task_for(hit.campaign)
    form = task.form(hit, data)
    valid = form.is_valid()
    with transaction.atomic():
        assignment = _target(assignment_pk)
        existing = Answer.objects.filter(assignment=assignment).first()
        if existing is not None:
            return Submission(existing, form, created=False)
        if not valid:
            return Submission(None, form)
        if (
            not task.gold_ok(hit, form.cleaned_data)
            and assignment.gold_warnings < GOLD_TRIES - 1
            and gold_warning_allowed(hit, client)
        ):
            assignment.gold_warnings += 1
            assignment.save(update_fields=["gold_warnings"])
            return Submission(None, form, gold_retry=True, tries_left=GOLD_TRIES - assignment.gold_warnings)
        answer = _store(
            hit=hit,
            assignment=assignment,
            worker=assignment.worker,
            values=task.answer_values(hit, form.cleaned_data),
            held=_held(assignment, hit.campaign, now),
            opened_at=assignment.opened_at,
            submitted_at=now,
            gold_warnings=assignment.gold_warnings,
            user_agent=user_agent[:500],
            confirmation=crowd_for(hit.campaign).stored_confirmation(),
        )
        _close(assignment)
        if answer.counts:
            enqueue_aggregation(task.units_of(hit))
    return Submission(answer, form, created=True)


def _close(assignment: Assignment) -> None:
    """The assignment is answered. One that was given up stays so if the worker holds the HIT again."""
    try:
        with transaction.atomic():
            Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.SUBMITTED)
    except IntegrityError:
        pass


def _store(
    *,
    hit: Hit,
    assignment: Assignment,
    worker: Worker,
    values: dict[str, Any],
    held: str,
    confirmation: str,
    opened_at: datetime | None,
    submitted_at: datetime | None,
    gold_warnings: int = 0,
    user_agent: str = "",
    review: str = Answer.Review.SUBMITTED,
) -> Answer:
    """`values`: what the HIT's task stores of the answer, scored (`Task.answer_values`)."""
    answer = Answer.objects.create(
        unit_id=hit.unit_id,
        hit=hit,
        assignment=assignment,
        worker=worker,
        source=crowd_for(hit.campaign).name,
        **values,
        gold_warnings=gold_warnings,
        opened_at=opened_at,
        submitted_at=submitted_at,
        user_agent=user_agent,
        confirmation=confirmation,
        held=held,
        review=review,
    )
    hit_answers_settle(hit.pk)
    answer.refresh_from_db(fields=["counts"])
    return answer


def answer_adopt(
    *,
    hit: Hit,
    assignment_id: str,
    worker: Worker,
    copy: tuple,
    accepted_at: datetime | None,
    submitted_at: datetime | None,
    review: str,
) -> Answer:
    """Store an answer that reached the platform but not us (our server was down when the worker
    submitted). The platform listed it, so it is confirmed; `copy` is its copy as the HIT's task read it
    (`Task.parse_platform_fields`, by the form's rules)."""
    with transaction.atomic():
        assignment, _ = Assignment.objects.get_or_create(
            external_id=assignment_id,
            defaults={
                "hit": hit,
                "worker": worker,
                "opened_at": accepted_at or timezone.now(),
                "status": Assignment.Status.SUBMITTED,
            },
        )
        return _store(
            hit=hit,
            assignment=assignment,
            worker=worker,
            values=task_for(hit.campaign).values_from_copy(hit, copy),
            held=Answer.Held.NONE,
            opened_at=accepted_at,
            submitted_at=submitted_at,
            confirmation=Answer.Confirmation.CONFIRMED,
            review=review,
        )


def hit_answers_settle(hit_id: int) -> bool:
    """Decide which of a HIT's answers count: the trusted ones, in the order they were sent, up to the
    number the HIT wants; later ones are kept and shown as beyond it. True when any answer changed:
    the caller then aggregates the unit again."""
    with transaction.atomic():
        hit = Hit.objects.select_for_update().select_related("campaign").filter(pk=hit_id).first()
        if hit is None:
            return False
        wanted, counted = hit.answers_wanted, 0
        now_counting: list[int] = []
        now_not: list[int] = []
        for answer in Answer.objects.filter(hit_id=hit_id).order_by(F("submitted_at").asc(nulls_last=True), "id"):
            counts = answer.trusted and counted < wanted
            counted += counts
            if counts != answer.counts:
                (now_counting if counts else now_not).append(answer.pk)
        if now_counting:
            Answer.objects.filter(pk__in=now_counting).update(counts=True)
        if now_not:
            Answer.objects.filter(pk__in=now_not).update(counts=False)
    return bool(now_counting or now_not)


def answers_settle(answer_ids: Iterable[int]) -> set[int]:
    """Settle the HITs of these answers again after a review, a confirmation or a sync changed them;
    imported answers (no HIT) count exactly when they are trusted. Returns the units whose counted
    answers changed."""
    ids = list(answer_ids)
    units: set[int] = set()
    hit_ids = sorted(set(Answer.objects.filter(pk__in=ids).exclude(hit=None).values_list("hit_id", flat=True)))
    for hit in Hit.objects.filter(pk__in=hit_ids).select_related("campaign").order_by("id"):
        if hit_answers_settle(hit.pk):
            units.update(task_for(hit.campaign).units_of(hit))
    imported = Answer.objects.filter(pk__in=ids, hit=None)
    now_counting = imported.filter(Answer.trusted_q(), counts=False)
    now_not = imported.filter(counts=True).exclude(Answer.trusted_q())
    for changed, counts in ((now_counting, True), (now_not, False)):
        units |= {unit for unit in changed.values_list("unit_id", flat=True) if unit is not None}
        changed.update(counts=counts)
    return units


def answer_units(answer: Answer) -> list[int]:
    """The units whose results an answer feeds: its unit, or its HIT's (a presence HIT's several)."""
    if answer.unit_id is not None:
        return [answer.unit_id]
    return task_for(answer.hit.campaign).units_of(answer.hit) if answer.hit is not None else []
