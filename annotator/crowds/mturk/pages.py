"""The HIT page as Mechanical Turk's ExternalQuestion shows it, inside a frame on MTurk's worker site,
and the assignment behind it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from annotator import selectors
from annotator.crowds.mturk.common import NAME, mturk_worker
from annotator.models import Answer, Assignment, Campaign, Hit
from annotator.services.answers import AssignmentError
from annotator.services.throttle import client_address, page_opens_allowed, too_many
from annotator.task_kinds import task_for
from annotator.views.hit_form import FormPage, bind_form, message, render_form, submit

PREVIEW_ID = "ASSIGNMENT_ID_NOT_AVAILABLE"
TOKEN_SALT = "annotator.mturk-assignment"  # noqa: S105 - a signing salt, not a secret
# Mechanical Turk's ids (AssignmentId, HITId, WorkerId): 1 to 64 upper-case letters and digits.
MTURK_ID = re.compile(r"[A-Z0-9]{1,64}")


def assignment_open(
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
    if hit_id != hit.remote_id:
        raise AssignmentError("This page belongs to another HIT; open it again from Mechanical Turk.")
    existing = Assignment.objects.filter(external_id=assignment_id).select_related("worker").first()
    if existing is not None:
        if existing.hit_id != hit.pk or existing.worker.external_id != worker_id:
            raise AssignmentError("This assignment belongs to another HIT or worker.")
        return existing
    worker = mturk_worker(hit.campaign, worker_id)
    with transaction.atomic():
        Assignment.objects.filter(hit=hit, worker=worker, status=Assignment.Status.OPEN).exclude(
            external_id=assignment_id
        ).update(status=Assignment.Status.ABANDONED)
        # An answered assignment of this worker and HIT that MTurk has not vouched for may be one made
        # up in their name: it steps aside (kept, its answer never counted unless MTurk lists it), so
        # the assignment MTurk issued them takes their answer. One MTurk has confirmed stays theirs.
        Assignment.objects.filter(hit=hit, worker=worker).exclude(status=Assignment.Status.ABANDONED).exclude(
            external_id=assignment_id
        ).exclude(answer__confirmation=Answer.Confirmation.CONFIRMED).update(status=Assignment.Status.ABANDONED)
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


def submit_url(turk_submit_to: str, environment: str) -> str:
    """Where the browser posts the answer for MTurk: turkSubmitTo when it is one of Mechanical Turk's
    origins (or an origin the deployment added), otherwise the environment's own; never anywhere else."""
    allowed = {*settings.MTURK_SUBMIT_ORIGINS.values(), *settings.MTURK_EXTRA_SUBMIT_ORIGINS}
    parts = urlsplit(turk_submit_to.strip()) if turk_submit_to else None
    origin = f"{parts.scheme}://{parts.netloc}" if parts and parts.scheme and parts.netloc else ""
    if origin not in allowed:
        origin = settings.MTURK_SUBMIT_ORIGINS.get(environment, settings.MTURK_SUBMIT_ORIGINS["sandbox"])
    return f"{origin}/mturk/externalSubmit"


def _frame_policy(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = "frame-ancestors " + " ".join(settings.MTURK_FRAME_ANCESTORS)
    return response


def _finish(
    request: HttpRequest, hit: Hit, answer: Answer, turk_submit_to: str, again: bool, notice: str = ""
) -> HttpResponse:
    """The page that hands the stored answer to MTurk (posted by script, or by the worker's click), for
    the assignment it was stored on (the worker's live one, when an old tab sent it)."""
    fields = {"assignmentId": answer.via_hit()[1].external_id, **task_for(hit.campaign).platform_fields(answer)}
    if notice:
        text = f"{notice} Press the button to finish the HIT at Mechanical Turk."
    elif again:
        text = "We had this answer already; press the button to finish the HIT at Mechanical Turk."
    else:
        text = "Your answer is saved. Finishing the HIT at Mechanical Turk…"
    return message(
        request,
        "Your answer is stored" if again or notice else "Thank you",
        text,
        template="crowds/mturk/finish.html",
        submit_to=submit_url(turk_submit_to, hit.campaign.environment),
        submit_fields=fields,
        auto_submit=not (again or notice),
    )


@csrf_exempt
@xframe_options_exempt
@require_http_methods(["GET", "POST"])
def mturk_hit(request: HttpRequest, key: str) -> HttpResponse:
    """Security behavior: MTurk frames this page from its worker sites, where third-party cookies may
    be blocked, so there is no session and no CSRF cookie. The form carries instead a token signed
    with our secret key that names the assignment, and a submission is accepted only for that
    assignment, once. Only MTurk's worker sites may frame the page (CSP frame-ancestors), and
    answers are posted on only to MTurk's own externalSubmit (see `submit_url`)."""
    return _frame_policy(_mturk_hit(request, key))


def _mturk_hit(request: HttpRequest, key: str) -> HttpResponse:
    hit = selectors.hit_by_key(key)
    if hit is None or hit.campaign.platform != NAME:
        return message(request, "No such HIT", "This HIT does not exist or is not on Mechanical Turk.", status=404)
    if request.method == "POST":
        return _post(request, hit)
    params = request.GET
    assignment_id = params.get("assignmentId", "")
    form = bind_form(hit)
    if not assignment_id or assignment_id == PREVIEW_ID:
        return render_form(request, FormPage(hit, form, action="", preview=True))
    if not page_opens_allowed(client_address(request.META)):
        return too_many(request)
    if hit.campaign.status == Campaign.Status.FINISHED and not _within_deadline(hit, assignment_id):
        return message(request, "This HIT has ended", "The campaign is finished; return the HIT, please.", status=410)
    try:
        assignment = assignment_open(
            hit=hit, assignment_id=assignment_id, worker_id=params.get("workerId", ""), hit_id=params.get("hitId", "")
        )
    except AssignmentError as error:
        return message(request, "This HIT cannot be opened", str(error), status=400)
    turk_submit_to = params.get("turkSubmitTo", "")
    answered = Answer.objects.filter(assignment=assignment).select_related("assignment").first()
    if answered is not None:
        return _finish(request, hit, answered, turk_submit_to, again=True)
    hidden = {"token": signing.dumps(assignment.pk, salt=TOKEN_SALT), "turkSubmitTo": turk_submit_to}
    return render_form(request, FormPage(hit, form, reverse("mturk-hit", args=[hit.key]), hidden))


def _within_deadline(hit: Hit, assignment_id: str) -> bool:
    """An assignment accepted before the campaign finished may still be answered until MTurk's deadline."""
    deadline = (
        Assignment.objects.filter(hit=hit, external_id=assignment_id[:64]).values_list("expires_at", flat=True).first()
    )
    return deadline is not None and timezone.now() <= deadline


def _post(request: HttpRequest, hit: Hit) -> HttpResponse:
    try:
        assignment_pk = signing.loads(request.POST.get("token", ""), salt=TOKEN_SALT)
    except signing.BadSignature:
        return message(
            request,
            "This form cannot be sent",
            "Its assignment token is missing or not valid; open the HIT again from Mechanical Turk.",
            status=400,
        )
    assignment = Assignment.objects.filter(pk=assignment_pk, hit=hit).first()
    if assignment is None:
        return message(request, "No such assignment", "This assignment does not belong to this HIT.", status=400)
    turk_submit_to = request.POST.get("turkSubmitTo", "")
    hidden = {"token": request.POST["token"], "turkSubmitTo": turk_submit_to}
    page = FormPage(hit, bind_form(hit), reverse("mturk-hit", args=[hit.key]), hidden)
    result = submit(request, assignment, page)
    if isinstance(result, HttpResponse):
        return result
    return _finish(request, hit, result.stored, turk_submit_to, again=not result.created, notice=result.notice)
