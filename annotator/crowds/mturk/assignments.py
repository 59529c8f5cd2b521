"""An MTurk assignment from the page's side: MTurk sends its ids with the HIT page, and whether they are
real only MTurk knows (sync asks it). So opening the page writes nothing to the database: what a page
open leaves is an entry in the cache that expires with MTurk's deadline for the assignment, so ids made
up by the hundred cost no Worker or Assignment row. The rows appear when the page posts an answer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotator.crowds.mturk.common import NAME, mturk_worker
from annotator.models import Answer, Assignment, Hit, Worker
from annotator.services.answers import AssignmentError

# Mechanical Turk's ids (AssignmentId, HITId, WorkerId): 1 to 64 upper-case letters and digits.
MTURK_ID = re.compile(r"[A-Z0-9]{1,64}")
ANSWERED = "You have answered this unit already; return this HIT so another worker gets it."


@dataclass(frozen=True)
class PageOpen:
    """An accepted assignment's page as it was first opened: MTurk's deadline runs from then."""

    hit: int
    assignment_id: str
    worker_id: str
    opened_at: float  # a POSIX timestamp
    client: str = ""

    @property
    def opened(self) -> datetime:
        return datetime.fromtimestamp(self.opened_at, UTC)

    def expires(self, hit: Hit) -> datetime:
        return self.opened + timedelta(minutes=hit.campaign.assignment_minutes)


def _open_key(assignment_id: str) -> str:
    return f"mturk-open:{assignment_id}"


def _live_key(hit: Hit, worker_id: str) -> str:
    return f"mturk-live:{hit.pk}:{hit.campaign.environment}:{worker_id}"


def ids_check(*, hit: Hit, assignment_id: str, worker_id: str, hit_id: str) -> None:
    """Each id must look like one of MTurk's, and the HIT id must be this HIT's own, so a link to one
    HIT cannot open another."""
    for name, value in (("assignmentId", assignment_id), ("workerId", worker_id), ("hitId", hit_id)):
        if not MTURK_ID.fullmatch(value or ""):
            raise AssignmentError(f"This link lacks a valid {name}; open the HIT from Mechanical Turk.")
    if hit_id != hit.remote_id:
        raise AssignmentError("This page belongs to another HIT; open it again from Mechanical Turk.")


def stored_assignment(hit: Hit, assignment_id: str, worker_id: str) -> Assignment | None:
    """The assignment's row, once an answer was posted on it; another HIT's or worker's is refused."""
    existing = Assignment.objects.filter(external_id=assignment_id).select_related("worker").first()
    if existing is not None and (existing.hit_id != hit.pk or existing.worker.external_id != worker_id):
        raise AssignmentError("This assignment belongs to another HIT or worker.")
    return existing


def page_open(*, hit: Hit, assignment_id: str, worker_id: str, client: str, now: datetime | None = None) -> PageOpen:
    """Remember that the worker opened this assignment's page (the first open fixes its deadline) and
    that it is their latest one for the HIT, for an answer sent later from an older tab."""
    now = now or timezone.now()
    if _answered_here(hit, worker_id):
        raise AssignmentError(ANSWERED)
    seconds = hit.campaign.assignment_minutes * 60
    cache.add(_open_key(assignment_id), PageOpen(hit.pk, assignment_id, worker_id, now.timestamp(), client), seconds)
    opened = cache.get(_open_key(assignment_id))
    if opened is None:  # a cache that keeps nothing (a dummy one): the page's token still carries the time
        opened = PageOpen(hit.pk, assignment_id, worker_id, now.timestamp(), client)
    if (opened.hit, opened.worker_id) != (hit.pk, worker_id):
        raise AssignmentError("This assignment belongs to another HIT or worker.")
    cache.set(_live_key(hit, worker_id), opened, seconds)
    return opened


def page_opened(hit: Hit, assignment_id: str) -> PageOpen | None:
    opened = cache.get(_open_key(assignment_id))
    return opened if opened is not None and opened.hit == hit.pk else None


def _answered_here(hit: Hit, worker_id: str) -> bool:
    """MTurk confirmed an answer of this worker to this HIT: they may not answer its unit again."""
    return Assignment.objects.filter(
        hit=hit,
        worker__kind=NAME,
        worker__environment=hit.campaign.environment,
        worker__external_id=worker_id,
        answer__confirmation=Answer.Confirmation.CONFIRMED,
    ).exists()


def assignment_open(*, hit: Hit, opened: PageOpen, client: str) -> Assignment:
    """The row an answer posted from the page is stored on, created now, with MTurk's deadline for it
    (first opened, plus the campaign's assignment duration).

    A worker who returned the HIT and accepted it again has a new AssignmentId: an answer sent from the
    old tab, from the address that opened the new one, goes on the new one (MTurk takes it only there);
    the returned one is marked abandoned."""
    existing = stored_assignment(hit, opened.assignment_id, opened.worker_id)
    if existing is not None:
        return existing
    latest = cache.get(_live_key(hit, opened.worker_id))
    if latest is not None and latest.assignment_id != opened.assignment_id and client and latest.client == client:
        opened = latest
        existing = stored_assignment(hit, opened.assignment_id, opened.worker_id)
        if existing is not None:
            return existing
    worker = mturk_worker(hit.campaign, opened.worker_id)
    with transaction.atomic():
        _step_aside(hit, worker, opened.assignment_id)
        try:
            with transaction.atomic():
                return Assignment.objects.create(
                    hit=hit,
                    worker=worker,
                    external_id=opened.assignment_id,
                    opened_at=opened.opened,
                    expires_at=opened.expires(hit),
                )
        except IntegrityError:  # posted twice at once, or an answered HIT accepted again
            pass
    existing = Assignment.objects.filter(external_id=opened.assignment_id).first()
    if existing is None:
        raise AssignmentError(ANSWERED)
    return existing


def _step_aside(hit: Hit, worker: Worker, assignment_id: str) -> None:
    """The worker's other assignments of this HIT give way: an open one was returned; an answered one
    MTurk has not vouched for may be one made up in their name, so it is kept (its answer never counted
    unless MTurk lists it) and the assignment MTurk issued them takes their answer. One MTurk has
    confirmed stays theirs."""
    others = Assignment.objects.filter(hit=hit, worker=worker).exclude(external_id=assignment_id)
    others.filter(status=Assignment.Status.OPEN).update(status=Assignment.Status.ABANDONED)
    others.exclude(status=Assignment.Status.ABANDONED).exclude(
        answer__confirmation=Answer.Confirmation.CONFIRMED
    ).update(status=Assignment.Status.ABANDONED)
