"""Handing HITs to workers: local annotators claim them here; MTurk's workers arrive with MTurk's ids.
Their answers are stored by `services.answers`.

Concurrency rests on unique constraints and row locks, never on check-then-write: a local assignment
holds one of its HIT's answer slots (unique per HIT), a worker holds at most one live assignment per
HIT, and a worker's claims run one at a time (their row is locked)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotator import selectors
from annotator.models import Assignment, Campaign, Hit, Worker
from annotator.services.answers import AssignmentError

# Mechanical Turk's ids (AssignmentId, HITId, WorkerId): 1 to 64 upper-case letters and digits.
MTURK_ID = re.compile(r"[A-Z0-9]{1,64}")


def assignments_expire(now: datetime | None = None) -> int:
    """Return abandoned local assignments' slots to the pool. Their rows stay: a late answer is kept."""
    now = now or timezone.now()
    return (
        Assignment.objects.filter(status=Assignment.Status.OPEN, expires_at__lt=now)
        .exclude(slot=None)
        .update(status=Assignment.Status.ABANDONED, slot=None)
    )


def assignment_claim(
    *, worker: Worker, now: datetime | None = None, campaign: Campaign | None = None
) -> Assignment | None:
    """The worker's next local HIT (or, for a Prolific participant, the next of `campaign`'s): their own
    open one if any, else a HIT of a unit they never had whose answer slots are not all taken; units
    closest to done first. None when nothing is left.

    The worker's row is locked while this runs, so requests racing for the same worker (a
    double-clicked submit, several tabs) hand out one HIT between them, not one each."""
    now = now or timezone.now()
    assignments_expire(now)
    with transaction.atomic():
        worker = Worker.objects.select_for_update().get(pk=worker.pk)
        if worker.blocked:
            return None
        current = selectors.worker_open_assignment(worker, now, campaign=campaign)
        if current is not None:
            return current
        for hit in selectors.hits_available(worker=worker, campaign=campaign)[:25]:
            taken = set(hit.assignments.exclude(slot=None).values_list("slot", flat=True))
            free = [s for s in range(hit.answers_wanted) if s not in taken]
            if not free:
                continue
            try:
                with transaction.atomic():
                    return Assignment.objects.create(
                        hit=hit,
                        worker=worker,
                        slot=free[0],
                        external_id=uuid.uuid4().hex,
                        opened_at=now,
                        expires_at=now + timedelta(minutes=hit.campaign.assignment_minutes),
                    )
            except IntegrityError:  # another worker took that slot meanwhile
                continue
    return None


def assignment_open_mturk(
    *, hit: Hit, assignment_id: str, worker_id: str, hit_id: str, now: datetime | None = None
) -> Assignment:
    """The assignment behind an accepted MTurk HIT, created the first time its page opens, with MTurk's
    deadline for it (accepted now, plus the campaign's assignment duration).

    MTurk sends its three ids with the page; each must look like one of MTurk's, and the HIT id must be
    this HIT's own, so a link to one HIT cannot open another. Whether the assignment is real only MTurk
    knows: its answer counts once sync sees it there. A worker who returned the HIT and accepted it again
    gets a new AssignmentId, and the returned one is marked abandoned."""
    now = now or timezone.now()
    for name, value in (("assignmentId", assignment_id), ("workerId", worker_id), ("hitId", hit_id)):
        if not MTURK_ID.fullmatch(value or ""):
            raise AssignmentError(f"This link lacks a valid {name}; open the HIT from Mechanical Turk.")
    if hit_id != hit.mturk_hit_id:
        raise AssignmentError("This page belongs to another HIT; open it again from Mechanical Turk.")
    existing = Assignment.objects.filter(external_id=assignment_id).select_related("worker").first()
    if existing is not None:
        if existing.hit_id != hit.pk or existing.worker.external_id != worker_id:
            raise AssignmentError("This assignment belongs to another HIT or worker.")
        return existing
    worker, _ = Worker.objects.get_or_create(kind=Worker.Kind.MTURK, external_id=worker_id)
    with transaction.atomic():
        Assignment.objects.filter(hit=hit, worker=worker, status=Assignment.Status.OPEN).exclude(
            external_id=assignment_id
        ).update(status=Assignment.Status.ABANDONED)
        try:
            with transaction.atomic():
                return Assignment.objects.create(
                    hit=hit,
                    worker=worker,
                    external_id=assignment_id,
                    opened_at=now,
                    expires_at=now + timedelta(minutes=hit.campaign.assignment_minutes),
                )
        except IntegrityError:  # the same page opened twice at once, or an answered HIT re-accepted
            pass
    existing = Assignment.objects.filter(external_id=assignment_id).first()
    if existing is None:
        raise AssignmentError("You have answered this unit already; return this HIT so another worker gets it.")
    return existing
