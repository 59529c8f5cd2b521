"""Local annotators: signed in with an account or a lab link, they take "next HIT" until none is left."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotator import selectors
from annotator.models import Answer, Assignment, Campaign, Worker
from annotator.services.assignments import assignment_claim
from annotator.services.workers import LabLink, WorkerError, lab_link_check, lab_link_still_valid, worker_for_user
from annotator.views.hit_form import FormPage, bind_form, message, render_form, submit

SESSION_WORKER = "annotator_lab_worker"
SESSION_LINK = "annotator_lab_link"  # [link version, expiry] of the link that signed the session in


def _request_worker(request: HttpRequest) -> Worker | None:
    worker_id = request.session.get(SESSION_WORKER)
    if worker_id:
        worker = Worker.objects.filter(pk=worker_id, kind=Worker.Kind.LINK).first()
        version, expires = request.session.get(SESSION_LINK) or (0, 0)
        try:
            if worker is None:
                raise WorkerError("This lab link's worker no longer exists.")
            lab_link_still_valid(LabLink(worker, version, expires))
        except WorkerError:
            request.session.flush()  # revoked or expired: signed out
            return None
        return worker
    if request.user.is_authenticated:
        return worker_for_user(request.user)
    return None


class WorkerRequest(HttpRequest):
    """A request `worker_required` let through: it names the signed-in worker."""

    worker: Worker


def worker_required(view):
    """Security behavior: pages for a signed-in annotator (account or lab link); others go to login."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        worker = _request_worker(request)
        if worker is None:
            return redirect(f"{reverse('login')}?next={request.path}")
        request.worker = worker  # type: ignore[attr-defined]  # what makes it a WorkerRequest
        return view(request, *args, **kwargs)

    return wrapped


@require_http_methods(["GET", "POST"])
def lab_link(request: HttpRequest, token: str) -> HttpResponse:
    """Security behavior: opening a link only shows who it is for; signing in takes a POST from this
    page (CSRF-protected), so no other site can sign a browser in as one of our workers. Whoever holds
    the link then answers as its worker until they close the browser, the link expires or the
    researcher revokes it; the link can't name another worker without our secret key."""
    try:
        grant = lab_link_check(token)
    except WorkerError as error:
        return message(request, "Lab link not valid", str(error), status=400)
    if request.method == "GET":
        return render(request, "annotator/lab_link.html", {"worker": grant.worker})
    request.session.cycle_key()
    request.session[SESSION_WORKER] = grant.worker.pk
    request.session[SESSION_LINK] = [grant.version, grant.expires]
    request.session.set_expiry(0)  # ends when the browser closes
    return redirect("annotate-home")


@require_GET
@worker_required
def home(request: WorkerRequest) -> HttpResponse:
    worker = request.worker
    return render(
        request,
        "annotator/annotate_home.html",
        {
            "worker": worker,
            "done": selectors.worker_answer_count(worker),
            "current": selectors.worker_open_assignment(worker),
            "available": selectors.hits_available(worker=worker).count(),
        },
    )


@require_POST
@worker_required
def next_hit(request: WorkerRequest) -> HttpResponse:
    assignment = assignment_claim(worker=request.worker)
    if assignment is None:
        messages.info(request, "Nothing is left to annotate right now. Thank you!")
        return redirect("annotate-home")
    return redirect("annotate-assignment", external_id=assignment.external_id)


@require_http_methods(["GET", "POST"])
@worker_required
def assignment_page(request: WorkerRequest, external_id: str) -> HttpResponse:
    """Security behavior: an annotator sees and answers only their own assignments (CSRF-protected,
    session-based: this page is never framed)."""
    assignment = (
        Assignment.objects.select_related("hit__campaign")
        .filter(external_id=external_id, worker=request.worker)
        .first()
    )
    if assignment is None:
        return message(
            request,
            "No such HIT",
            "This HIT is not one of yours; take the next one from the start page.",
            status=404,
            home=True,
        )
    hit = assignment.hit
    if request.method == "GET" and Answer.objects.filter(assignment=assignment).exists():
        messages.info(request, "Your answer to that HIT was stored already.")
        return redirect("annotate-home")
    if request.method == "GET" and hit.campaign.status == Campaign.Status.FINISHED:
        return message(
            request, "This campaign has finished", "Its HITs take no more answers. Thank you!", status=410, home=True
        )
    done = selectors.worker_answer_count(request.worker)
    page = FormPage(hit, bind_form(hit), request.path, csrf=True, done_count=done)
    if request.method == "GET":
        return render_form(request, page)
    result = submit(request, assignment, page)
    if isinstance(result, HttpResponse):
        return result
    if not result.created:
        messages.info(request, "Your answer to that HIT was stored already.")
    elif result.notice:
        messages.warning(request, result.notice)
    else:
        messages.success(request, f"Saved. You have answered {done + 1} HIT{'s' if done else ''}.")
    following = assignment_claim(worker=request.worker)
    if following is None:
        messages.info(request, "Nothing is left to annotate right now. Thank you!")
        return redirect("annotate-home")
    return redirect("annotate-assignment", external_id=following.external_id)
