"""The study as Prolific's participants take it: the study link lands here with PROLIFIC_PID,
STUDY_ID and SESSION_ID; the participant answers HITs one after another; after the last one the page
sends them back to Prolific with the study's completion code."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from annotator.crowds.prolific.common import NAME, ProlificState
from annotator.crowds.prolific.sessions import (
    ProlificUnavailable,
    session_answered,
    session_finish,
    session_next,
    session_start,
)
from annotator.models import Assignment, Campaign, ProlificSession
from annotator.services.answers import AssignmentError
from annotator.services.throttle import client_address, page_opens_allowed, too_many
from annotator.views.hit_form import FormPage, bind_form, message, render_form, submit
from prolific.client import completion_url

SALT = "annotator.prolific-session"  # a signing salt, not a secret


def _session_token(session: ProlificSession) -> str:
    # No timestamp (it would never be checked): the same session always has the same link.
    return signing.Signer(salt=SALT).sign_object(session.pk)


def _hit_url(session: ProlificSession) -> str:
    return f"{reverse('prolific-hit', args=[session.campaign_id])}?t={_session_token(session)}"


@require_GET
def start(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Security behavior: no cookie (a participant's browser may refuse them for this site); the
    participant is named by the ids Prolific puts on the link, and every later page by a token signed
    with our secret key. A session opens only for a SESSION_ID that Prolific lists as this participant's
    submission in this study, in progress: a participant's PROLIFIC_PID beside any other SESSION_ID
    opens nothing, and answers still count only once sync sees the submission."""
    if not page_opens_allowed(client_address(request.META)):
        return too_many(request)
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.platform != NAME:
        return message(request, "No such study", "This study does not exist here; open it from Prolific.", status=404)
    params = request.GET
    try:
        session = session_start(
            campaign=campaign,
            participant_id=params.get("PROLIFIC_PID", ""),
            study_id=params.get("STUDY_ID", ""),
            session_id=params.get("SESSION_ID", ""),
        )
    except ProlificUnavailable as error:
        return message(request, "This study cannot be opened right now", str(error), status=503)
    except AssignmentError as error:
        return message(request, "This study cannot be opened", str(error), status=400)
    return redirect(_hit_url(session))


@csrf_exempt
@require_http_methods(["GET", "POST"])
def hit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Security behavior: the token names the session (GET) or the session and its assignment (POST);
    an answer is accepted only for that assignment, once (the MTurk page's approach: no session, no
    CSRF cookie, a signed token instead)."""
    token = request.GET.get("t", "")
    try:
        session_pk = signing.Signer(salt=SALT).unsign_object(token)
    except signing.BadSignature:
        return message(
            request, "This page cannot be opened", "Its link is not valid; open the study from Prolific.", status=400
        )
    session = (
        ProlificSession.objects.filter(pk=session_pk, campaign_id=campaign_id)
        .select_related("campaign", "worker")
        .first()
    )
    if session is None:
        return message(request, "No such session", "Open the study from Prolific.", status=404)
    if session.worker.blocked:
        return message(request, "This study is not available to you", "Please return it on Prolific.", status=403)
    if request.method == "POST":
        return _answer(request, session)
    if session.campaign.status == Campaign.Status.FINISHED:
        return message(
            request, "This study has ended", "It takes no more answers; please return it on Prolific.", status=410
        )
    assignment = session_next(session)
    if assignment is None:
        if not session_answered(session):  # no work, no code: nothing was answered
            return message(
                request,
                "No HIT is left for you",
                "Every HIT of this study has all the answers it needs, or you have answered each of its units "
                "elsewhere. Please return the study on Prolific; there is no completion code without an answer.",
            )
        return _done(request, session_finish(session))
    return _form(request, session, assignment)


def _done(request: HttpRequest, code: str) -> HttpResponse:
    """The last page: the completion code shown (to copy, should the way back fail) and the way back
    to Prolific, which the page also takes by itself after a few seconds."""
    return message(
        request,
        "Thank you: you are done",
        "Your answers are saved. Your completion code is below; this page takes you back to Prolific in a "
        "few seconds, or go now.",
        template="crowds/prolific/done.html",
        code=code,
        back=completion_url(code, settings.PROLIFIC_COMPLETION_URL),
    )


def _form(request: HttpRequest, session: ProlificSession, assignment: Assignment) -> HttpResponse:
    return render_form(request, _page(session, assignment, bind_form(assignment.hit)))


def _page(session: ProlificSession, assignment: Assignment, form: forms.Form) -> FormPage:
    state = ProlificState.of(session.campaign)
    share, done = state.hits_per_participant, session_answered(session)
    if done:
        progress = f"Saved: set {done} of {share}. Set {done + 1} of at most {share}."
    else:
        progress = (
            f"Set 1 of at most {share}, about {state.minutes_per_hit} minutes each (about "
            f"{share * state.minutes_per_hit} minutes in all). Each set is saved when you send it; after the "
            "last, this page gives your completion code and takes you back to Prolific."
        )
    return FormPage(
        assignment.hit,
        form,
        f"{reverse('prolific-hit', args=[session.campaign_id])}?t={_session_token(session)}",
        hidden={"assignment": signing.dumps(assignment.pk, salt=f"{SALT}:{session.pk}")},
        progress=progress,
        draft_key=assignment.external_id,
    )


def _answer(request: HttpRequest, session: ProlificSession) -> HttpResponse:
    try:
        assignment_pk = signing.loads(request.POST.get("assignment", ""), salt=f"{SALT}:{session.pk}")
    except signing.BadSignature:
        return message(
            request,
            "This form cannot be sent",
            "Its assignment token is missing or not valid; open the study again from Prolific.",
            status=400,
        )
    assignment = (
        Assignment.objects.select_related("hit__campaign")
        .filter(pk=assignment_pk, worker=session.worker, hit__campaign=session.campaign)
        .first()
    )
    if assignment is None:
        return message(request, "No such HIT", "This HIT is not one of yours.", status=400)
    result = submit(request, assignment, _page(session, assignment, bind_form(assignment.hit)))
    if isinstance(result, HttpResponse):
        return result
    return redirect(_hit_url(session))  # the next HIT, or back to Prolific with the code
