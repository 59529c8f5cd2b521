"""The staff dashboard: what researchers read (unit grids, unit pages, figures, crowd beside NetDissect)
and where reviewers act (accept, override, send back, reject). Security behavior: every page here needs
staff and the "view dashboard" permission (annotator/permissions.py); actions need their own."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import urlencode
from django.views.decorators.http import require_safe

from annotator import selectors
from annotator.crowds import Crowd, crowd_for, crowd_for_answer
from annotator.models import Answer, Campaign, Category, Layer, Network, UnitLabel
from annotator.permissions import VIEW, dashboard_permission
from annotator.selectors import automatic, evaluations
from annotator.selectors import dashboard as reads
from annotator.services import artifacts, figures
from annotator.task_kinds import default_task, task_for


@dataclass(frozen=True)
class AnswerRow:
    """One answer's row on the unit page: the time spent, the images as its worker saw them, and the
    crowd whose actions the row offers."""

    answer: Answer
    seconds: float | None
    pk_text: str
    seen: list[reads.SeenImage]
    crowd: Crowd


FIGURES = {"types": figures.types_figure, "objects": figures.objects_figure}
CONTENT_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


@require_safe
@dashboard_permission(VIEW)
def index(request: HttpRequest) -> HttpResponse:
    summaries = {(s.network, s.layer): s for s in selectors.layer_summaries()}
    networks = []
    for network in Network.objects.prefetch_related("layers").order_by("name"):
        auto = automatic.layers_with_auto_labels(network.pk)
        layers = [
            {"layer": layer, "summary": summaries.get((network.name, layer.name)), "auto": layer.pk in auto}
            for layer in network.layers.all()
        ]
        networks.append({"network": network, "layers": layers})
    campaigns = []
    for campaign in reads.campaigns_with_progress():
        progress = selectors.campaign_progress(campaign)
        where = crowd_for(campaign).describe(campaign) if campaign.platform else "-"
        campaigns.append({"campaign": campaign, "counts": progress.counts, "percent": progress.percent, "where": where})
    dissections = [{"dissection": d, "stages": selectors.dissection_progress(d)} for d in reads.dissections()]
    return render(
        request,
        "dashboard/index.html",
        {"networks": networks, "campaigns": campaigns, "dissections": dissections},
    )


@require_safe
@dashboard_permission(VIEW)
def layer_grid(request: HttpRequest, layer_id: int) -> HttpResponse:
    layer = get_object_or_404(Layer.objects.select_related("network"), pk=layer_id)
    hidden = automatic.withheld(layer)  # once for the cards, the summary and the note
    query, cards = _grid(request, layer, hidden=hidden)
    summary = next(iter(selectors.layer_summaries(layer.network.name, layer=layer.name)), None)
    return render(
        request,
        "dashboard/layer.html",
        {
            "layer": layer,
            "cards": cards,
            "query": query,
            "query_string": _filter_query(query),
            "summary": summary,
            "sorts": reads.SORTS,
            "statuses": UnitLabel.Status.choices,
            "categories": Category.choices,
            "has_auto": layer.pk in automatic.layers_with_auto_labels(layer.network_id),
            "automatic": automatic.auto_summary(layer, hidden=hidden),
            "withheld": hidden,
        },
    )


GRID_FILTER = (
    "sort",
    "order",
    "status",
    "category",
    "q",
    "min_precision",
    "min_agreement",
    "min_rho",
    "max_rho",
    "auto",
    "detects",
)


def _grid(
    request: HttpRequest, layer: Layer, pictures: bool = True, hidden: automatic.Withheld | None = None
) -> tuple[dict[str, str], list]:
    """The grid's filter from the query string, and the cards it selects, in its order."""
    query = {name: request.GET.get(name, "").strip() for name in GRID_FILTER}
    cards = reads.layer_units(
        layer,
        sort=query["sort"] or "unit",
        descending=query["order"] == "desc",
        status=query["status"],
        category=query["category"],
        text=query["q"],
        min_precision=_share(query["min_precision"]),
        min_agreement=_share(query["min_agreement"]),
        detects=query["detects"],
        min_rho=_correlation(query["min_rho"]),
        max_rho=_correlation(query["max_rho"]),
        auto=query["auto"],
        pictures=pictures,
        hidden=hidden,
    )
    return query, cards


def _filter_query(query: dict[str, str]) -> str:
    return urlencode({name: value for name, value in query.items() if value})


def _share(text: str) -> float | None:
    """A 0-1 threshold from the query string; anything else means no threshold."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value <= 1 else None


def _correlation(text: str) -> float | None:
    """A correlation bound (-1 to 1) from the query string; anything else means no bound."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if -1 <= value <= 1 else None


@require_safe
@dashboard_permission(VIEW)
def unit_detail(request: HttpRequest, unit_id: int) -> HttpResponse:
    unit = reads.unit_page(unit_id)
    if unit is None:
        raise Http404("No such unit.")
    answers = list(unit.answers.all())
    seen = reads.answers_as_seen(answers)
    rows = [AnswerRow(a, reads.seconds_spent(a), str(a.pk), seen.get(a.pk, []), crowd_for_answer(a)) for a in answers]
    hits = list(unit.hits.all())
    hidden = automatic.withheld(unit.layer)
    auto_labels, auto_withheld = automatic.unit_auto_labels(unit, hidden)
    # Previous and next unit through the grid's filter and order, for working through weak units.
    query, cards = _grid(request, unit.layer, pictures=False, hidden=hidden)
    order = [card.unit.pk for card in cards]
    at = order.index(unit.pk) if unit.pk in order else None
    neighbours = {
        "previous": order[at - 1] if at else None,
        "next": order[at + 1] if at is not None and at + 1 < len(order) else None,
    }
    return render(
        request,
        "dashboard/unit.html",
        {
            "unit": unit,
            "label": reads.related_or_none(unit, "label"),
            "rf": reads.related_or_none(unit, "receptive_field"),
            "hits": hits,
            "neighbours": neighbours,
            "query_string": _filter_query(query),
            "position": (at, len(order)),
            "answers": [row for row in rows if row.answer.counts],
            "kept": [row for row in rows if not row.answer.counts],
            "rows_template": default_task().answer_rows_template,  # the unit's labels are the default task's
            "categories": Category.choices,
            "auto_labels": auto_labels,
            "auto_withheld": auto_withheld,
            "actions": list(unit.review_actions.all()),
            "evaluations": evaluations.unit_evaluations(unit),
            "send_back_campaigns": list(
                dict.fromkeys(hit.campaign.name for hit in hits if hit.campaign.status == Campaign.Status.PUBLISHED)
            ),
        },
    )


@require_safe
@dashboard_permission(VIEW)
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("network"), pk=campaign_id)
    progress = selectors.campaign_progress(campaign)
    crowd = crowd_for(campaign)
    return render(
        request,
        "dashboard/campaign.html",
        {
            "campaign": campaign,
            "crowd": crowd,
            "crowd_label": crowd.describe(campaign),
            "crowd_info": crowd.dashboard_context(campaign),
            "counts": progress.counts,
            "money": progress.money,
            "percent": progress.percent,
            "workers": reads.worker_quality(campaign=campaign),
            "layers": list(campaign.layers.all()),
            "rules": task_for(campaign).rules,
            "visibility_changes": automatic.visibility_changes(campaign),
            "rule_form": {
                "rules": request.GET.getlist("rules"),
                "feedback": request.GET.get("feedback", ""),
                "min_seconds": request.GET.get("min_seconds") or "20",
                "approve_passing": bool(request.GET.get("approve_passing")),
            },
        },
    )


@require_safe
@dashboard_permission(VIEW)
def figure_page(request: HttpRequest, network_id: int) -> HttpResponse:
    network = get_object_or_404(Network, pk=network_id)
    return render(
        request,
        "dashboard/figures.html",
        {
            "network": network,
            "kinds": FIGURES,
            "summaries": selectors.layer_summaries(network.name),
            "histogram": selectors.object_detector_histogram(network.name),
            "beyond_top": evaluations.network_points(network.pk),
            "automatic": [
                (layer, found) for layer in network.layers.order_by("order") if (found := automatic.auto_summary(layer))
            ],
        },
    )


@require_safe
@dashboard_permission(VIEW)
def figure_file(request: HttpRequest, network_id: int, kind: str, fmt: str) -> HttpResponse:
    """A figure drawn from the current data; `?download=1` saves it under a file name for papers."""
    network = get_object_or_404(Network, pk=network_id)
    if kind not in FIGURES or fmt not in CONTENT_TYPES:
        raise Http404("Figures are types or objects, as png or svg.")
    data = FIGURES[kind](network.name, fmt)
    response = HttpResponse(data, content_type=CONTENT_TYPES[fmt])
    response["Cache-Control"] = "no-store"
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="{network.name}_{kind}.{fmt}"'
    return response


@require_safe
@dashboard_permission(VIEW)
def netdissect(request: HttpRequest, layer_id: int) -> HttpResponse:
    layer = get_object_or_404(Layer.objects.select_related("network"), pk=layer_id)
    sources = automatic.auto_label_sources(layer)
    source = request.GET.get("source", "")
    if source not in sources:
        source = sources[0] if sources else "netdissect"
    return render(
        request,
        "dashboard/netdissect.html",
        {
            "layer": layer,
            "comparison": automatic.netdissect_comparison(layer, source=source),
            "source": source,
            "source_name": automatic.AUTO_SOURCES.get(source, source),
            "others": [(s, automatic.AUTO_SOURCES.get(s, s)) for s in sources if s != source],
        },
    )


@require_safe
@dashboard_permission(VIEW)
def media(request: HttpRequest, path: str) -> FileResponse:
    """Dissection artifacts (segmentations, RF pictures) for staff, from the artifact store (a folder
    or S3), whatever DEBUG says; a path cannot leave the store, not even through a symbolic link, and
    only files are served."""
    try:
        if not artifacts.servable(path):
            raise Http404("No such artifact.")
        handle = artifacts.open_file(path)
    except (SuspiciousFileOperation, ValueError, OSError):
        raise Http404("No such artifact.") from None
    response = FileResponse(handle, content_type=mimetypes.guess_type(path)[0] or "application/octet-stream")
    response["Cache-Control"] = "private, max-age=3600"
    return response
