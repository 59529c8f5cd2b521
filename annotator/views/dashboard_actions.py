"""The dashboard's actions: every post a reviewer makes (review a unit, approve, reject or pay an
answer, block a worker, sync or review a campaign by rule, decide a submission, pay bonuses in bulk,
expire, extend or delete its HITs, show its reviewers the automatic labels or withhold them). Each
calls one service (the campaign's crowd does what its platform offers); a refused action comes back as
a message and changes nothing. Security behavior: each needs staff and its own permission
(annotator/permissions.py); each is recorded with the reviewer's name."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from annotator.crowds import crowd_for, crowd_for_answer
from annotator.errors import ActionRefused
from annotator.forms import ExtendForm, RuleReviewForm, SendBackForm, numbers_clean
from annotator.models import Answer, Campaign, Worker, unit_name
from annotator.permissions import MANAGE_HITS, MODERATE, PAY, REVIEW, dashboard_permission
from annotator.services import review
from annotator.services.campaigns import CampaignError, campaign_automatic_show
from annotator.services.crowd_actions import campaign_decide, campaign_hits_change, campaign_sync
from annotator.services.payments import bonus_send, bonus_send_bulk
from annotator.services.review_rules import RuleReview, campaign_review_by_rule
from annotator.services.workers import worker_block


def _reviewer(request: HttpRequest) -> review.Reviewer:
    return review.Reviewer(request.user.get_username())


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback)


@require_POST
@dashboard_permission(REVIEW)
def unit_review(request: HttpRequest, unit_id: int) -> HttpResponse:
    """Accept, override or send back; a refused action comes back as a message, nothing changed."""
    action = request.POST.get("action", "")
    reviewer = _reviewer(request)
    try:
        if action == "accept":
            review.unit_accept(unit_id=unit_id, reviewer=reviewer)
            messages.success(request, f"{unit_name(unit_id)}: the crowd's label is accepted.")
        elif action == "override":
            review.unit_override(
                unit_id=unit_id,
                reviewer=reviewer,
                label=request.POST.get("label", ""),
                category=request.POST.get("category", ""),
            )
            messages.success(request, f"{unit_name(unit_id)}: your label and category are kept beside the crowd's.")
        elif action == "send_back":
            try:
                more = numbers_clean(SendBackForm, more=request.POST.get("more", "1"))["more"]
            except ValueError as error:
                raise review.ReviewError(str(error)) from None
            hit = review.unit_send_back(
                unit_id=unit_id, reviewer=reviewer, more=more, campaign=request.POST.get("campaign", "")
            )
            messages.success(
                request,
                f"{unit_name(unit_id)}: sent back to campaign {hit.campaign.name}, whose HIT now wants "
                f"{hit.answers_wanted} answers; the unit is pending until they arrive, and your override, if "
                "any, stays.",
            )
        else:
            raise review.ReviewError(f"Unknown review action {action!r}.")
    except ActionRefused as error:
        messages.error(request, str(error))
    return redirect(unit_url(request, unit_id))


def unit_url(request: HttpRequest, unit_id: int | None, anchor: str = "") -> str:
    """Back to the unit page with the grid's filter and order the reviewer came with (the forms carry
    it as `grid`; only the grid's own keys are kept), so previous / next still walk that filter."""
    from django.http import QueryDict
    from django.utils.http import urlencode

    from annotator.views.dashboard import GRID_FILTER

    if unit_id is None:  # a presence answer: its images are several units'
        return reverse("dashboard")
    sent = QueryDict(request.POST.get("grid", ""))
    query = urlencode({key: sent[key] for key in GRID_FILTER if sent.get(key)})
    return f"{reverse('dashboard-unit', args=[unit_id])}{'?' + query if query else ''}{anchor}"


def _on_answer(request: HttpRequest, answer_id: int, act: Callable[[Answer], str]) -> HttpResponse:
    """Run one answer action; its message (or the refusal) is shown on the unit page in that answer's
    row, where the reviewer is, and the page opens there."""
    answer = get_object_or_404(Answer, pk=answer_id)
    here = f"at-answer answer-{answer_id}"
    try:
        messages.success(request, act(answer), extra_tags=here)
    except ActionRefused as error:
        messages.error(request, str(error), extra_tags=here)
    return redirect(unit_url(request, answer.unit_id, f"#answer-{answer_id}"))


@require_POST
@dashboard_permission(REVIEW)
def answer_reject(request: HttpRequest, answer_id: int) -> HttpResponse:
    def act(answer: Answer) -> str:
        review.answer_reject(
            answer_id=answer.pk, reviewer=_reviewer(request), feedback=request.POST.get("feedback", "")
        )
        return f"Answer {answer.pk} is rejected and left out of the unit's label."

    return _on_answer(request, answer_id, act)


@require_POST
@dashboard_permission(REVIEW)
def answer_approve(request: HttpRequest, answer_id: int) -> HttpResponse:
    def act(answer: Answer) -> str:
        review.answer_approve(
            answer_id=answer.pk, reviewer=_reviewer(request), feedback=request.POST.get("feedback", "")
        )
        return f"Answer {answer.pk} is approved{' and paid' if crowd_for_answer(answer).pays_on_approval else ''}."

    return _on_answer(request, answer_id, act)


@require_POST
@dashboard_permission(PAY)
def answer_bonus(request: HttpRequest, answer_id: int) -> HttpResponse:
    def act(answer: Answer) -> str:
        bonus = bonus_send(
            answer_id=answer.pk,
            amount=request.POST.get("amount", ""),
            reason=request.POST.get("reason", ""),
            reviewer=_reviewer(request),
        )
        return f"Paid a ${bonus.amount} bonus to {bonus.worker.external_id}."

    return _on_answer(request, answer_id, act)


@require_POST
@dashboard_permission(MODERATE)
def worker_action(request: HttpRequest, worker_id: int) -> HttpResponse:
    worker = get_object_or_404(Worker, pk=worker_id)
    block = request.POST.get("action") == "block"
    try:
        worker_block(
            worker_id=worker.pk,
            reviewer_name=request.user.get_username(),
            reason=request.POST.get("reason", ""),
            block=block,
        )
        messages.success(request, f"{worker.external_id} is {'blocked' if block else 'unblocked'}.")
    except ActionRefused as error:
        messages.error(request, str(error))
    return _back(request, reverse("dashboard"))


CAMPAIGN_ACTIONS = {
    "review": REVIEW,
    "sync": REVIEW,
    "expire": MANAGE_HITS,
    "extend": MANAGE_HITS,
    "delete": MANAGE_HITS,
    "bonus": PAY,
    "decide": REVIEW,
    "automatic": MANAGE_HITS,  # not REVIEW: a blind review's reviewers cannot lift it themselves
}


@require_POST
def campaign_action(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """sync, review (by rule), decide a submission, bulk bonuses, or the HITs' lifecycle (expire, extend,
    delete), for a campaign, as its crowd offers them: each with its permission."""
    action = request.POST.get("action", "")
    return dashboard_permission(CAMPAIGN_ACTIONS.get(action, REVIEW))(_campaign_action)(request, campaign_id, action)


def _campaign_action(request: HttpRequest, campaign_id: int, action: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    # After a preview or a refusal the rule form comes back as it was filled in.
    as_filled = (
        f"{reverse('dashboard-campaign', args=[campaign.pk])}?"
        + urlencode(
            {
                "rules": request.POST.getlist("rules"),
                "feedback": request.POST.get("feedback", ""),
                "min_seconds": request.POST.get("min_seconds", ""),
                "approve_passing": request.POST.get("approve_passing", ""),
            },
            doseq=True,
        )
        + "#review-rules"
    )
    try:
        if action == "review":
            if _review_by_rule(request, campaign):
                return redirect(as_filled)
        elif action == "sync":
            for line in campaign_sync(campaign=campaign):
                messages.info(request, line)
        elif action == "decide":
            approve = request.POST.get("decision") == "approve"
            ident = request.POST.get("participant", "")
            campaign_decide(
                campaign=campaign,
                ident=ident,
                approve=approve,
                reviewer=_reviewer(request),
                feedback=request.POST.get("feedback", ""),
                category=request.POST.get("category", ""),
            )
            messages.success(
                request, f"{ident}: {'approved' if approve else 'rejected'} on {crowd_for(campaign).label}."
            )
        elif action == "bonus":
            amounts = {worker: request.POST.get("amount", "") for worker in request.POST.getlist("participants")}
            paid = bonus_send_bulk(
                campaign=campaign, amounts=amounts, reason=request.POST.get("reason", ""), reviewer=_reviewer(request)
            )
            messages.success(request, f"Bonuses paid in one bulk payment to {len(paid)} participants.")
        elif action == "automatic":
            show = {"1": True, "0": False}.get(request.POST.get("show", ""))
            if show is None:
                raise CampaignError("Say show=1 (reviewers see the automatic labels) or show=0 (a blind review).")
            changed = campaign_automatic_show(campaign=campaign, show=show, actor=request.user.get_username())
            shown = "now see" if show else "no longer see"
            messages.success(
                request,
                f"Reviewers {shown} the automatic labels of {campaign.name}'s units."
                if changed
                else "Nothing changed: the campaign was set so already.",
            )
        elif action in crowd_for(campaign).lifecycle:
            hours = numbers_clean(ExtendForm, hours=request.POST.get("hours") or 24)["hours"]
            done, refused = campaign_hits_change(
                campaign=campaign, action=action, actor=request.user.get_username(), hours=hours
            )
            messages.success(request, f"{action}: {done} HITs.")
            for line in refused:
                messages.error(request, line)
        else:
            raise CampaignError(f"Campaign {campaign.name} has no action {action!r} on {crowd_for(campaign).label}.")
    except (ActionRefused, ValueError) as error:
        messages.error(request, str(error))
        if action == "review":
            return redirect(as_filled)
    return redirect("dashboard-campaign", campaign_id=campaign.pk)


def _review_by_rule(request: HttpRequest, campaign: Campaign) -> bool:
    """Apply (or preview) the rule review a reviewer asked for; True for a preview."""
    dry_run = request.POST.get("preview") == "1"
    asked = RuleReview(
        reject_rules=request.POST.getlist("rules"),
        approve_passing=bool(request.POST.get("approve_passing")),
        feedback=request.POST.get("feedback", ""),
        min_seconds=numbers_clean(RuleReviewForm, min_seconds=request.POST.get("min_seconds") or 20)["min_seconds"],
        dry_run=dry_run,
    )
    outcome = campaign_review_by_rule(campaign=campaign, reviewer=_reviewer(request), request=asked)
    verb = "would be" if dry_run else "were"
    messages.info(
        request,
        f"{len(outcome.rejected)} {outcome.noun} {verb} rejected and {len(outcome.approved)} approved"
        f"{' (preview: nothing changed)' if dry_run else ''}.",
    )
    for line in outcome.refused:
        messages.error(request, line)
    return dry_run
