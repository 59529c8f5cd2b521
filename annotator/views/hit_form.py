"""What every page that shows a HIT shares (the local annotator's, and each crowd's own: a platform's
frame, a study's pages): binding the HIT's task's form, showing it, handing a submission to the answer
service, and the images (served by slot position, so nothing in the page tells a unit image from a
gold one). What the form asks is the HIT's task's; what surrounds it is the page's."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotator import selectors
from annotator.models import Assignment, Hit
from annotator.services import artifacts
from annotator.services.answers import GOLD_TRIES, AssignmentError, Submission, answer_submit
from annotator.services.throttle import client_address
from annotator.task_kinds import task_for


@dataclass
class FormPage:
    """Everything the template needs besides the request and the task's own part."""

    hit: Hit
    form: forms.Form
    action: str
    hidden: dict[str, str] = field(default_factory=dict)
    csrf: bool = False  # a page of this site's session (the local one); framed pages carry a signed token
    preview: bool = False  # shown locked, before the worker accepted the HIT
    notice: str = ""
    done_count: int | None = None
    progress: str = ""
    draft_key: str = ""  # names the browser's draft where the URL does not tell one assignment from another


def bind_form(hit: Hit, data=None) -> forms.Form:
    return task_for(hit.campaign).form(hit, data)


def render_form(request: HttpRequest, page: FormPage, status: int = 200) -> HttpResponse:
    task = task_for(page.hit.campaign)
    context = {
        "page": page,
        "hit": page.hit,
        "campaign": page.hit.campaign,
        "disabled": page.preview,
        **task.page_context(page.hit, page.form),
    }
    return render(request, task.template, context, status=status)


def submit(request: HttpRequest, assignment: Assignment, page: FormPage) -> Submission | HttpResponse:
    """Hand the posted form to the answer service; returns the stored submission (its answer set), or
    the response that shows the form again (with its errors, or with the gold warning)."""
    try:
        result = answer_submit(
            assignment_pk=assignment.pk,
            data=request.POST,
            user_agent=request.headers.get("User-Agent", ""),
            client=client_address(request.META),
        )
    except AssignmentError as error:
        return message(request, "This HIT cannot take answers", str(error), status=400)
    page.form = result.form
    if result.gold_retry:
        page.notice = gold_notice(page.hit, result)
        return render_form(request, page)
    if result.answer is None:
        return render_form(request, page, status=400)
    return result


def gold_notice(hit: Hit, result: Submission) -> str:
    """Which try comes next, what the task wants looked at again, and whether the next try is the last."""
    upcoming = GOLD_TRIES - result.tries_left + 1
    text = f"Try {upcoming} of {GOLD_TRIES}. {task_for(hit.campaign).gold_warning(hit, result.form)}"
    if result.tries_left == 1:
        text += " This is your last try: what you submit next is stored as it is."
    return text


def message(request: HttpRequest, title: str, text: str, status: int = 200, **extra) -> HttpResponse:
    template = extra.pop("template", "annotator/message.html")
    return render(request, template, {"title": title, "text": text, **extra}, status=status)


@require_GET
def hit_image(request: HttpRequest, key, position: int) -> FileResponse:
    """One slot's rendered image. Security behavior: anyone with the HIT's unguessable key may fetch
    its images (a platform's preview needs no login); the response never names the unit. A slot's
    picture never changes, so browsers and proxies may keep it for a year."""
    relative = selectors.hit_slot_file(key, position)
    if not relative:
        raise Http404("No such image in this HIT.")
    if not artifacts.servable(relative):
        raise Http404("The image file is missing from the artifact store.")
    response = FileResponse(
        artifacts.open_file(relative), content_type="image/jpeg" if relative.endswith(".jpg") else "image/png"
    )
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
