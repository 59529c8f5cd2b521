"""Bonuses on Mechanical Turk: paid once per token, recorded with who paid and why."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from annotator.forms import BonusForm, numbers_clean
from annotator.models import Answer, Bonus, ReviewAction
from annotator.services.crowds import mturk_client
from annotator.services.review import Reviewer, ReviewError
from mturk import client as mturk


def bonus_send(*, answer_id: int, amount: str | Decimal, reason: str, reviewer: Reviewer) -> Bonus:
    """Pay a bonus for one MTurk assignment. The row (with its UniqueRequestToken) is written first,
    so a retry after a lost reply pays nothing twice: MTurk refuses a token it has seen."""
    try:
        value = numbers_clean(BonusForm, amount=amount)["amount"]
    except ValueError as error:
        raise ReviewError(str(error)) from None
    reason = " ".join(reason.split())
    if not reason:
        raise ReviewError("Say why: the worker sees the reason with the bonus.")
    answer = Answer.objects.select_related("assignment", "worker", "hit__campaign").filter(pk=answer_id).first()
    if answer is None or answer.source != Answer.Source.MTURK:
        raise ReviewError("Bonuses are paid on Mechanical Turk: this answer is not an MTurk assignment.")
    if answer.confirmation != Answer.Confirmation.CONFIRMED:
        raise ReviewError("MTurk has not confirmed this assignment (sync the campaign): no bonus is paid for it.")
    with transaction.atomic():
        count = Bonus.objects.filter(answer=answer).count()
        bonus = Bonus.objects.create(
            answer=answer,
            worker=answer.worker,
            amount=value,
            reason=reason,
            token=f"bonus-{answer.pk}-{count + 1}",
            actor=reviewer.name,
        )
    try:
        mturk.send_bonus(
            mturk_client(answer.hit.campaign),
            worker_id=answer.worker.external_id,
            assignment_id=answer.assignment.external_id,
            amount=value,
            reason=reason,
            token=bonus.token,
        )
    except mturk.MTurkError as error:
        Bonus.objects.filter(pk=bonus.pk).delete()
        raise ReviewError(str(error)) from error
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
