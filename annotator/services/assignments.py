"""Handing HITs to workers from the pool: signed-in annotators (and a crowd's participants who take a
campaign's HITs one after another) claim them here; a platform whose workers arrive
with the platform's own ids opens their assignments in its adapter. Their answers are stored by
`services.answers`.

Concurrency rests on unique constraints and row locks, never on check-then-write: a local assignment
holds one of its HIT's answer slots (unique per HIT), a worker holds at most one live assignment per
HIT, and a worker's claims run one at a time (their row is locked)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotator import selectors
from annotator.models import Assignment, Campaign, Worker


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
    """The worker's next local HIT (or, for a crowd's participant, the next of `campaign`'s): their own
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
