"""Who annotates: local accounts, lab-session links, and the worker behind a request.

A lab link is a signed token naming a Worker, for sessions where people annotate without accounts;
anyone holding the link answers as that worker, so give each person their own. Links expire, and
can be revoked (each names the worker's link version)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.db.models import F
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from annotator.errors import ActionRefused
from annotator.models import Worker

LAB_LINK_SALT = "annotator.lab-link"
LAB_LINK_DAYS = 30


class WorkerError(ActionRefused):
    pass


def worker_for_user(user) -> Worker:
    worker = Worker.objects.filter(user=user).first()
    if worker is None:
        worker, _ = Worker.objects.get_or_create(
            kind=Worker.Kind.ACCOUNT, external_id=user.get_username(), defaults={"user": user}
        )
    return worker


@dataclass(frozen=True)
class LabLink:
    """What a valid lab link grants: this worker, until `expires` (a Unix time), while the worker's
    links are at `version` (revoking moves it on)."""

    worker: Worker
    version: int
    expires: int


def lab_link_create(*, label: str, valid_days: float = LAB_LINK_DAYS) -> tuple[Worker, str]:
    """A worker for one person of a lab session and the path of the page that signs them in as that
    worker, valid for `valid_days`."""
    label = label.strip()
    if not label or len(label) > 200:
        raise WorkerError("Give the lab link a label of 1 to 200 characters (a participant number, say).")
    if not 0 < valid_days <= 366:
        raise WorkerError("A lab link is valid for more than 0 and at most 366 days.")
    worker, _ = Worker.objects.get_or_create(kind=Worker.Kind.LINK, external_id=label)
    expires = int(time.time() + valid_days * 86400)
    token = signing.dumps(
        {"worker": worker.pk, "v": worker.link_version, "exp": expires}, salt=LAB_LINK_SALT, compress=True
    )
    return worker, reverse("annotate-lab", args=[token])


def lab_link_check(token: str, now: float | None = None) -> LabLink:
    """The grant behind a lab link; WorkerError says why it no longer signs anyone in."""
    try:
        data = signing.loads(token, salt=LAB_LINK_SALT)
    except signing.BadSignature as error:
        raise WorkerError("This lab link is not valid; ask the researcher for a new one.") from error
    worker = Worker.objects.filter(pk=data.get("worker"), kind=Worker.Kind.LINK).first()
    if worker is None:
        raise WorkerError("This lab link's worker no longer exists; ask the researcher for a new one.")
    grant = LabLink(worker, int(data.get("v", 0)), int(data.get("exp", 0)))
    lab_link_still_valid(grant, now)
    return grant


def lab_link_still_valid(grant: LabLink, now: float | None = None) -> None:
    """Checked when the link is used and on every page its session opens."""
    if grant.version != grant.worker.link_version:
        raise WorkerError("This lab link was revoked; ask the researcher for a new one.")
    if (now or time.time()) > grant.expires:
        raise WorkerError("This lab link has expired; ask the researcher for a new one.")


def lab_link_revoke(*, label: str) -> Worker:
    """Every link made so far for this label stops working, and browsers signed in by one are signed out."""
    worker = Worker.objects.filter(kind=Worker.Kind.LINK, external_id=label.strip()).first()
    if worker is None:
        raise WorkerError(f"No lab link is labelled {label!r}.")
    Worker.objects.filter(pk=worker.pk).update(link_version=F("link_version") + 1)
    worker.refresh_from_db()
    return worker


def annotator_invite(*, username: str, email: str = "") -> str:
    """Create an annotator account without a password and return the path where they choose one."""
    users = get_user_model()
    if users.objects.filter(username=username).exists():
        raise WorkerError(f"A user named {username!r} exists already.")
    user = users.objects.create_user(username=username, email=email)  # unusable password until they set one
    worker_for_user(user)
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("password_reset_confirm", args=[uid, default_token_generator.make_token(user)])


def worker_block(*, worker_id: int, reviewer_name: str, reason: str, block: bool = True) -> Worker:
    """Block (or unblock) a worker from our HITs: here they get no more HITs and their later answers are
    held; their crowd blocks them on its platform first (`Crowd.block`), so a refusal there changes
    nothing here."""
    from annotator.crowds import crowd_for_worker
    from annotator.models import ReviewAction

    reason = " ".join(reason.split())
    if block and not reason:
        raise WorkerError("Say why: the platform shows the reason to the blocked worker.")
    worker = Worker.objects.filter(pk=worker_id).first()
    if worker is None:
        raise WorkerError(f"There is no worker {worker_id}.")
    if worker.blocked == block:
        return worker
    crowd_for_worker(worker).block(worker, block=block, reason=reason)
    Worker.objects.filter(pk=worker.pk).update(blocked=block, blocked_reason=reason if block else "")
    ReviewAction.objects.create(
        actor=reviewer_name,
        action=ReviewAction.Action.BLOCK if block else ReviewAction.Action.UNBLOCK,
        worker=worker,
        details={"reason": reason},
    )
    worker.refresh_from_db()
    return worker
