"""The HIT page as Mechanical Turk's ExternalQuestion shows it, inside a frame on MTurk's worker site,
and the assignment behind it."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from annotator import selectors
from annotator.crowds.mturk.assignments import (
    PageOpen,
    assignment_open,
    ids_check,
    page_open,
    page_opened,
    stored_assignment,
)
from annotator.crowds.mturk.common import NAME
from annotator.models import Answer, Assignment, Campaign, Hit
from annotator.services.answers import AssignmentError
from annotator.services.throttle import client_address, page_opens_allowed, too_many
from annotator.task_kinds import task_for
from annotator.views.hit_form import FormPage, bind_form, message, render_form, submit

PREVIEW_ID = "ASSIGNMENT_ID_NOT_AVAILABLE"
TOKEN_SALT = "annotator.mturk-assignment"  # noqa: S105 - a signing salt, not a secret
OPEN_SALT = "annotator.mturk-page-open"  # noqa: S105 - a signing salt, not a secret


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
    client = client_address(request.META)
    if not page_opens_allowed(client):
        return too_many(request)
    if hit.campaign.status == Campaign.Status.FINISHED and not _within_deadline(hit, assignment_id):
        return message(request, "This HIT has ended", "The campaign is finished; return the HIT, please.", status=410)
    worker_id = params.get("workerId", "")
    try:
        ids_check(hit=hit, assignment_id=assignment_id, worker_id=worker_id, hit_id=params.get("hitId", ""))
        assignment = stored_assignment(hit, assignment_id, worker_id)
        if assignment is None:  # nothing is stored until an answer comes: the token carries the ids
            opened = page_open(hit=hit, assignment_id=assignment_id, worker_id=worker_id, client=client)
            token = signing.dumps([hit.pk, opened.assignment_id, opened.worker_id, opened.opened_at], salt=OPEN_SALT)
    except AssignmentError as error:
        return message(request, "This HIT cannot be opened", str(error), status=400)
    turk_submit_to = params.get("turkSubmitTo", "")
    if assignment is not None:
        answered = Answer.objects.filter(assignment=assignment).select_related("assignment").first()
        if answered is not None:
            return _finish(request, hit, answered, turk_submit_to, again=True)
        token = signing.dumps(assignment.pk, salt=TOKEN_SALT)
    hidden = {"token": token, "turkSubmitTo": turk_submit_to}
    return render_form(request, FormPage(hit, form, reverse("mturk-hit", args=[hit.key]), hidden))


def _within_deadline(hit: Hit, assignment_id: str) -> bool:
    """An assignment accepted before the campaign finished may still be answered until MTurk's deadline."""
    stored = Assignment.objects.filter(hit=hit, external_id=assignment_id[:64]).values_list("expires_at", flat=True)
    deadline = stored.first()
    if deadline is None:  # no answer posted yet: the page's first open fixed the deadline
        opened = page_opened(hit, assignment_id[:64])
        deadline = opened.expires(hit) if opened else None
    return deadline is not None and timezone.now() <= deadline


def _assignment(request: HttpRequest, hit: Hit) -> Assignment | None:
    """The assignment a posted form names: a stored one by its key, or one whose page opened without
    a row (its MTurk ids, signed by our page), created now."""
    token = request.POST.get("token", "")
    try:
        return Assignment.objects.filter(pk=signing.loads(token, salt=TOKEN_SALT), hit=hit).first()
    except signing.BadSignature:
        pass
    try:
        hit_pk, assignment_id, worker_id, opened_at = signing.loads(token, salt=OPEN_SALT)
    except (signing.BadSignature, TypeError, ValueError):
        hit_pk = None
    if hit_pk is None:
        raise AssignmentError("Its assignment token is missing or not valid; open the HIT again from Mechanical Turk.")
    if hit_pk != hit.pk:
        raise AssignmentError("This assignment does not belong to this HIT; open it again from Mechanical Turk.")
    opened = PageOpen(hit.pk, assignment_id, worker_id, float(opened_at))
    return assignment_open(hit=hit, opened=opened, client=client_address(request.META))


def _post(request: HttpRequest, hit: Hit) -> HttpResponse:
    try:
        assignment = _assignment(request, hit)
    except AssignmentError as error:
        return message(request, "This form cannot be sent", str(error), status=400)
    if assignment is None:
        return message(request, "No such assignment", "This assignment does not belong to this HIT.", status=400)
    turk_submit_to = request.POST.get("turkSubmitTo", "")
    hidden = {"token": request.POST["token"], "turkSubmitTo": turk_submit_to}
    page = FormPage(hit, bind_form(hit), reverse("mturk-hit", args=[hit.key]), hidden)
    result = submit(request, assignment, page)
    if isinstance(result, HttpResponse):
        return result
    return _finish(request, hit, result.stored, turk_submit_to, again=not result.created, notice=result.notice)
