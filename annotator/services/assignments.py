"""Handing HITs to workers and storing their answers.

Concurrency rests on unique constraints, never on check-then-write: a local assignment holds one of
its HIT's answer slots (unique per HIT), a worker holds at most one live assignment per HIT, and an
assignment has at most one answer (the answer's one-to-one key)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotator import selectors
from annotator.models import Answer, Assignment, Hit, HitImage, Worker

GOLD_TRIES = 3  # as in the authors' form: two warnings, and the third try is stored whatever it marks


class AssignmentError(Exception):
    """A request about an assignment that cannot be honoured; the message is shown to the worker."""


def assignments_expire(now: datetime | None = None) -> int:
    """Return abandoned local assignments' slots to the pool. Their rows stay: a late answer is kept."""
    now = now or timezone.now()
    return Assignment.objects.filter(status=Assignment.Status.OPEN, expires_at__lt=now).update(
        status=Assignment.Status.ABANDONED, slot=None)


def assignment_claim(*, worker: Worker, now: datetime | None = None) -> Assignment | None:
    """The worker's next local HIT: their own open one if any, else a HIT of a unit they never had
    whose answer slots are not all taken; units closest to done first. None when nothing is left."""
    now = now or timezone.now()
    assignments_expire(now)
    if worker.blocked:
        return None
    current = selectors.worker_open_assignment(worker, now)
    if current is not None:
        return current
    for hit in selectors.hits_available(worker=worker)[:25]:
        taken = set(hit.assignments.exclude(slot=None).values_list("slot", flat=True))
        free = [s for s in range(hit.answers_wanted) if s not in taken]
        if not free:
            continue
        try:
            with transaction.atomic():
                return Assignment.objects.create(
                    hit=hit, worker=worker, slot=free[0], external_id=uuid.uuid4().hex, opened_at=now,
                    expires_at=now + timedelta(minutes=hit.campaign.assignment_minutes))
        except IntegrityError:  # another worker took that slot, or this worker got the HIT meanwhile
            continue
    return None


def assignment_open_mturk(*, hit: Hit, assignment_id: str, worker_id: str, now: datetime | None = None
                          ) -> Assignment:
    """The assignment behind an accepted MTurk HIT, created the first time its page opens.

    MTurk decides who may take a HIT; a worker who returned it and accepted it again gets a new
    AssignmentId, and the returned one is marked abandoned."""
    now = now or timezone.now()
    if not assignment_id or not worker_id or len(assignment_id) > 64 or len(worker_id) > 200:
        raise AssignmentError("This link lacks a valid assignmentId or workerId; open the HIT from Mechanical Turk.")
    existing = Assignment.objects.filter(external_id=assignment_id).select_related("worker").first()
    if existing is not None:
        if existing.hit_id != hit.pk or existing.worker.external_id != worker_id:
            raise AssignmentError("This assignment belongs to another HIT or worker.")
        return existing
    worker, _ = Worker.objects.get_or_create(kind=Worker.Kind.MTURK, external_id=worker_id)
    with transaction.atomic():
        Assignment.objects.filter(hit=hit, worker=worker, status=Assignment.Status.OPEN).exclude(
            external_id=assignment_id).update(status=Assignment.Status.ABANDONED)
        try:
            with transaction.atomic():
                return Assignment.objects.create(hit=hit, worker=worker, external_id=assignment_id, opened_at=now)
        except IntegrityError:  # the same page opened twice at once, or an answered HIT re-accepted
            pass
    existing = Assignment.objects.filter(external_id=assignment_id).first()
    if existing is None:
        raise AssignmentError("You have answered this unit already; return this HIT so another worker gets it.")
    return existing


@dataclass
class Submission:
    """The outcome of a submit: the stored answer, or a request to look at the images again."""

    answer: Answer | None
    created: bool = False
    gold_retry: bool = False


def answer_submit(*, assignment_pk: int, description: str, category: str, marked: list[int],
                  user_agent: str = "", now: datetime | None = None) -> Submission:
    """Store an assignment's answer exactly once. `marked` has been checked against the HIT's slots.

    Unmarked gold images earn a warning and another try (the form keeps the answers) until the last
    of GOLD_TRIES, which is stored whatever it marks; the gold result is kept with the answer."""
    now = now or timezone.now()
    with transaction.atomic():
        assignment = (Assignment.objects.select_for_update().select_related("hit__campaign")
                      .filter(pk=assignment_pk).first())
        if assignment is None:
            raise AssignmentError("This assignment does not exist.")
        existing = Answer.objects.filter(assignment=assignment).first()
        if existing is not None:
            return Submission(existing, created=False)
        gold = set(HitImage.objects.filter(hit_id=assignment.hit_id, gold=True).values_list("position", flat=True))
        chosen = set(marked)
        gold_marked = len(gold & chosen)
        if gold_marked < len(gold) and assignment.gold_warnings < GOLD_TRIES - 1:
            assignment.gold_warnings += 1
            assignment.save(update_fields=["gold_warnings"])
            return Submission(None, gold_retry=True)
        hit = assignment.hit
        wrong = len(chosen - gold)
        answer = Answer.objects.create(
            unit_id=hit.unit_id, hit=hit, assignment=assignment, worker_id=assignment.worker_id,
            source=Answer.Source.MTURK if hit.campaign.on_mturk else Answer.Source.LOCAL,
            description=description, category=category, marked=sorted(chosen),
            precision=(hit.unit_images - wrong) / hit.unit_images if hit.unit_images else 0.0,
            gold_total=len(gold), gold_marked=gold_marked, gold_warnings=assignment.gold_warnings,
            opened_at=assignment.opened_at, submitted_at=now, user_agent=user_agent[:500])
        assignment.status = Assignment.Status.SUBMITTED
        assignment.save(update_fields=["status"])
        return Submission(answer, created=True)
