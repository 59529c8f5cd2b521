"""What the MTurk page and the local annotator page share: reading the form, showing it, and the
images (served by slot position, so nothing in the page tells a unit image from a gold one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from annotator import selectors
from annotator.forms import CATEGORY_EXAMPLES, DESCRIPTION_MAX, HitAnswerForm
from annotator.models import Assignment, Category, Hit
from annotator.services import artifacts
from annotator.services.answers import GOLD_TRIES, AssignmentError, Submission, answer_submit

GOLD_WARNING = (
    "Some images that clearly do not show your description are not marked yet. Look at every "
    "image again and mark each one that does not match, then submit."
)


@dataclass
class FormPage:
    """Everything the template needs besides the request."""

    hit: Hit
    mode: str  # "mturk", "preview", "local" or "prolific"
    form: HitAnswerForm
    action: str
    hidden: dict[str, str] = field(default_factory=dict)
    notice: str = ""
    done_count: int | None = None
    progress: str = ""
    draft_key: str = ""  # names the browser's draft where the URL does not tell one assignment from another


def bind_form(hit: Hit, data=None) -> tuple[HitAnswerForm, list[int]]:
    positions = [slot.position for slot in selectors.hit_slots(hit)]
    return HitAnswerForm(data, positions=positions), positions


def render_form(request: HttpRequest, page: FormPage, positions: list[int], status: int = 200) -> HttpResponse:
    marked = page.form.marked() if page.form.is_bound else set()
    slots = [
        {"position": p, "url": reverse("hit-image", args=[page.hit.key, p]), "marked": p in marked} for p in positions
    ]
    chosen = page.form.data.get("category", "") if page.form.is_bound else ""
    categories = [
        {"value": value, "label": label, "examples": CATEGORY_EXAMPLES[value], "checked": value == chosen}
        for value, label in Category.choices
    ]
    context = {
        "page": page,
        "hit": page.hit,
        "campaign": page.hit.campaign,
        "slots": slots,
        "categories": categories,
        "description_max": DESCRIPTION_MAX,
        "description": page.form.data.get("description", "") if page.form.is_bound else "",
        "disabled": page.mode == "preview",
        "marked_count": len(marked),
    }
    return render(request, "annotator/hit.html", context, status=status)


def submit(
    request: HttpRequest, assignment: Assignment, page: FormPage, positions: list[int]
) -> tuple[Submission | None, HttpResponse | None]:
    """Hand the posted form to the answer service; returns the stored submission, or the response that
    shows the form again (with its errors, or with the gold warning)."""
    try:
        result = answer_submit(
            assignment_pk=assignment.pk, data=request.POST, user_agent=request.headers.get("User-Agent", "")
        )
    except AssignmentError as error:
        return None, message(request, "This HIT cannot take answers", str(error), status=400)
    page.form = result.form
    if result.gold_retry:
        page.notice = gold_notice(result, len(positions))
        return None, render_form(request, page, positions)
    if result.answer is None:
        return None, render_form(request, page, positions, status=400)
    return result, None


def gold_notice(result: Submission, shown: int) -> str:
    """Which try comes next, what the worker has marked, and whether the next try is the last."""
    upcoming = GOLD_TRIES - result.tries_left + 1
    marked = len(result.form.cleaned_data.get("mismatch", [])) if hasattr(result.form, "cleaned_data") else 0
    text = (
        f"Try {upcoming} of {GOLD_TRIES}. {GOLD_WARNING} You have marked {marked} of the {shown} images; "
        f"{shown - marked} look unmarked."
    )
    if result.tries_left == 1:
        text += " This is your last try: what you submit next is stored as it is."
    return text


def message(request: HttpRequest, title: str, text: str, status: int = 200, **extra) -> HttpResponse:
    return render(request, "annotator/message.html", {"title": title, "text": text, **extra}, status=status)


@require_GET
def hit_image(request: HttpRequest, key, position: int) -> FileResponse:
    """One slot's rendered image. Security behavior: anyone with the HIT's unguessable key may fetch
    its images (MTurk previews need no login); the response never names the unit. A slot's picture
    never changes, so browsers and proxies may keep it for a year."""
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
