"""A participant's way through a campaign's Prolific study: the study link names them (PROLIFIC_PID,
STUDY_ID, SESSION_ID); they answer up to `hits_per_participant` HITs (10 by default: about 15 minutes of
work at 1-2 minutes a HIT, a usual Prolific study length, while one person's answers still spread over
ten units rather than many), never a unit twice, and go back to Prolific with the completion code."""

from __future__ import annotations

import re
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotator.crowds.base import CrowdError
from annotator.crowds.prolific.common import NAME, ProlificState, prolific_client
from annotator.models import Answer, Assignment, Campaign, ProlificSession, Worker
from annotator.services.answers import AssignmentError
from annotator.services.assignments import assignment_claim
from prolific.client import ProlificError

PROLIFIC_ID = re.compile(r"[0-9a-fA-F]{24}")  # Prolific's participant, study and session ids


def session_start(
    *, campaign: Campaign, participant_id: str, study_id: str, session_id: str, now: datetime | None = None
) -> ProlificSession:
    """The participant's session, from the three ids Prolific puts on the study link. Each must look
    like Prolific's, and the study must be this campaign's. Opening the link again resumes it; a new
    SESSION_ID (the participant took the study again) replaces the old one."""
    now = now or timezone.now()
    for name, value in (("PROLIFIC_PID", participant_id), ("STUDY_ID", study_id), ("SESSION_ID", session_id)):
        if not PROLIFIC_ID.fullmatch(value or ""):
            raise AssignmentError(f"This link lacks a valid {name}; open the study from Prolific.")
    if campaign.platform != NAME or study_id != ProlificState.of(campaign).study_id:
        raise AssignmentError("This link belongs to another study; open the study from Prolific.")
    _listed_active(participant_id, study_id, session_id)
    worker, _ = Worker.objects.get_or_create(kind=NAME, environment="", external_id=participant_id)
    try:
        with transaction.atomic():
            session, _ = ProlificSession.objects.get_or_create(
                campaign=campaign,
                worker=worker,
                defaults={"study_id": study_id, "session_id": session_id, "started_at": now},
            )
    except IntegrityError:  # the link opened twice at once
        session = ProlificSession.objects.get(campaign=campaign, worker=worker)
    if session.session_id != session_id:
        ProlificSession.objects.filter(pk=session.pk).update(session_id=session_id, status="", finished_at=None)
        session.refresh_from_db()
    return session


class ProlificUnavailable(AssignmentError):
    """Prolific could not be asked whether a link is real; the participant may try again shortly."""


def _listed_active(participant_id: str, study_id: str, session_id: str) -> None:
    """Prolific's word that SESSION_ID is a submission of this participant in this study, in progress:
    made-up ids (or a real participant's id beside a made-up session) open nothing and hold no HIT."""
    try:
        submission = prolific_client(tries=2).submission(session_id)
    except ProlificError as error:
        if error.status == 404:
            raise AssignmentError("Prolific does not know this session; open the study from Prolific.") from error
        raise ProlificUnavailable(
            "Prolific cannot be reached to check this link right now; please try again in a minute."
        ) from error
    except CrowdError as error:  # PROLIFIC_TOKEN not set: the site cannot check, so it lets nobody in
        raise ProlificUnavailable("This study cannot check its links right now; please try again later.") from error
    participant = submission.get("participant") or submission.get("participant_id")
    if participant != participant_id or submission.get("study_id") != study_id:
        raise AssignmentError("This session belongs to another participant or study; open the study from Prolific.")
    status = str(submission.get("status") or "")
    if status != "ACTIVE":
        words = {"AWAITING REVIEW": "submitted", "RETURNED": "returned", "TIMED-OUT": "timed out"}
        raise AssignmentError(
            f"Prolific lists this session as {words.get(status, status.lower() or 'not started')}: it takes no "
            "more answers. Take the study again from Prolific to answer more."
        )


def session_answered(session: ProlificSession) -> int:
    return Answer.objects.filter(worker=session.worker, hit__campaign=session.campaign).count()


def session_next(session: ProlificSession, now: datetime | None = None) -> Assignment | None:
    """The participant's next HIT of the campaign, or None when they have done their share (or
    nothing is left for them): then they go back to Prolific with the completion code."""
    if session.worker.blocked or session.finished_at is not None:
        return None
    if session_answered(session) >= ProlificState.of(session.campaign).hits_per_participant:
        return None
    return assignment_claim(worker=session.worker, now=now, campaign=session.campaign)


def session_finish(session: ProlificSession, now: datetime | None = None) -> str:
    """Close the participant's turn (their open HITs go back to the pool) and return the completion code."""
    with transaction.atomic():
        Assignment.objects.filter(
            worker=session.worker, hit__campaign=session.campaign, status=Assignment.Status.OPEN
        ).update(status=Assignment.Status.ABANDONED, slot=None)
        ProlificSession.objects.filter(pk=session.pk, finished_at=None).update(finished_at=now or timezone.now())
    return ProlificState.of(session.campaign).completion_code
