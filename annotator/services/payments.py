"""Bonuses: paid through the campaign's crowd, once per token, recorded with who paid and why.

A bonus row is written before the platform is asked, so a retry after a lost reply pays nothing twice
(the platform refuses a token it has seen); a refusal removes the row. Some platforms pay a bonus for
one answer (one assignment), others several workers of a campaign at once (bulk payments);
`Crowd.bonus_per` says which."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal

from django.db import transaction

from annotator.crowds import CrowdError, crowd_for, crowd_for_answer
from annotator.forms import BonusForm, numbers_clean
from annotator.models import Answer, Bonus, Campaign, ReviewAction, Worker
from annotator.services.review import Reviewer, ReviewError


def _amount(amount: str | Decimal) -> Decimal:
    try:
        return numbers_clean(BonusForm, amount=amount)["amount"]
    except ValueError as error:
        raise ReviewError(str(error)) from None


def _reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise ReviewError("Say why: the worker sees the reason with the bonus.")
    return reason


def bonus_send(*, answer_id: int, amount: str | Decimal, reason: str, reviewer: Reviewer) -> Bonus:
    """Pay a bonus for one answer, where its crowd pays bonuses per answer."""
    value, reason = _amount(amount), _reason(reason)
    answer = Answer.objects.select_related("assignment", "worker", "hit__campaign").filter(pk=answer_id).first()
    if answer is None:
        raise ReviewError(f"There is no answer {answer_id}.")
    crowd = crowd_for_answer(answer)
    if crowd.bonus_per != "answer":
        raise ReviewError(
            f"Bonuses for one answer are paid on a platform that pays them: this answer's is {crowd.label}."
        )
    if answer.confirmation != Answer.Confirmation.CONFIRMED:
        raise ReviewError(
            f"{crowd.shortname} has not confirmed this assignment (sync the campaign): no bonus is paid for it."
        )
    _, _, worker = answer.via_hit()
    with transaction.atomic():
        count = Bonus.objects.filter(answer=answer).count()
        bonus = Bonus.objects.create(
            answer=answer,
            worker=worker,
            amount=value,
            reason=reason,
            token=f"bonus-{answer.pk}-{count + 1}",
            actor=reviewer.name,
        )
    try:
        crowd.bonus_answer(answer, bonus)
    except CrowdError:  # the platform refused: nothing was paid
        Bonus.objects.filter(pk=bonus.pk).delete()
        raise
    with transaction.atomic():
        Bonus.objects.filter(pk=bonus.pk).update(paid=True)
        ReviewAction.objects.create(
            actor=reviewer.name,
            action=ReviewAction.Action.BONUS,
            unit_id=answer.unit_id,
            answer=answer,
            worker=answer.worker,
            details={"amount": str(value), "reason": reason},
        )
    bonus.refresh_from_db()
    return bonus


def bonus_send_bulk(
    *, campaign: Campaign, amounts: Mapping[str, str | Decimal], reason: str, reviewer: Reviewer
) -> list[Bonus]:
    """Pay bonuses to workers of a campaign (by the platform's id) in one payment, where its crowd pays
    in bulk. The same workers, amounts and reason again pay nothing twice."""
    reason = " ".join(reason.split())
    if not reason:
        raise ReviewError("Say why: the reason is kept with the bonus.")
    if not amounts:
        raise ReviewError("Name the participants to pay.")
    crowd = crowd_for(campaign)
    if crowd.bonus_per != "worker":
        raise ReviewError(
            f"Campaign {campaign.name} runs on {crowd.label}, which does not pay bonuses in bulk"
            f"{': they are paid per answer' if crowd.bonus_per == 'answer' else ''}."
        )
    values = {}
    for worker_id, amount in amounts.items():
        try:
            values[worker_id] = _amount(amount)
        except ReviewError as error:
            raise ReviewError(f"{worker_id}: {error}") from None
    latest: dict[str, tuple[Answer, Worker]] = {}
    for answer in (
        Answer.objects.filter(hit__campaign=campaign, worker__external_id__in=values)
        .select_related("worker")
        .order_by("id")
    ):
        _, _, worker = answer.via_hit()
        latest[worker.external_id] = (answer, worker)
    missing = sorted(set(values) - set(latest))
    if missing:
        raise ReviewError(f"Not participants of {campaign.name} (no answer of theirs): {', '.join(missing)}.")
    batch = hashlib.sha256(repr((sorted(values.items()), reason)).encode()).hexdigest()[:16]
    with transaction.atomic():
        bonuses = [
            Bonus.objects.get_or_create(
                token=f"{crowd.name}-{campaign.pk}-{batch}-{latest[worker_id][1].pk}",
                defaults={
                    "answer": latest[worker_id][0],
                    "worker": latest[worker_id][1],
                    "amount": value,
                    "reason": reason,
                    "actor": reviewer.name,
                },
            )[0]
            for worker_id, value in sorted(values.items())
        ]
    unpaid = [b for b in bonuses if not b.paid]
    if not unpaid:
        return bonuses
    bulk = crowd.bonus_workers(campaign, unpaid)  # refused: the rows stay unpaid, a retry pays them once
    with transaction.atomic():
        Bonus.objects.filter(pk__in=[b.pk for b in unpaid]).update(paid=True)
        for bonus in unpaid:
            ReviewAction.objects.create(
                actor=reviewer.name,
                action=ReviewAction.Action.BONUS,
                unit_id=bonus.answer.unit_id,
                answer=bonus.answer,
                worker=bonus.worker,
                details={"amount": str(bonus.amount), "reason": reason, "bulk": bulk},
            )
    for bonus in bonuses:
        bonus.refresh_from_db()
    return bonuses
