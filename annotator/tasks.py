"""Celery tasks: each takes ids, runs one idempotent step of a service, then lets the dissection
move on. Running a task twice (a redelivery after a lost worker) does nothing the second time."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from annotator import selectors
from annotator.models import Campaign, Dissection
from annotator.services import dissection as service
from annotator.services.aggregation import units_aggregate

log = logging.getLogger(__name__)
QUEUES = {
    "activation_chunk": "activations",
    "top_images_merge": "activations",
    "probe_maps": "activations",
    "thresholds": "activations",
    "tally": "activations",
    "auto_labels": "activations",
    "image_sweep": "sweeps",
    "unit_segment": "segmentation",
}


@shared_task(name="annotator.dissection_step", acks_late=True)
def dissection_step(step: str, dissection_id: int, ident: int) -> None:
    service.STEPS[step](dissection_id, ident)
    if service.dissection_advance(dissection_id):
        enqueue_pending(dissection_id)


def enqueue_pending(dissection_id: int) -> int:
    """Queue every pending step of the dissection's current stage (after the transaction commits)."""
    dissection = Dissection.objects.get(pk=dissection_id)
    steps = service.pending_steps(dissection)
    if not steps and service.dissection_advance(dissection_id):
        return enqueue_pending(dissection_id)

    def send() -> None:
        for step, ident in steps:
            dissection_step.apply_async((step, dissection_id, ident), queue=QUEUES[step])

    transaction.on_commit(send)
    return len(steps)


@shared_task(name="annotator.units_aggregate", acks_late=True)
def units_aggregate_task(unit_ids: list[int]) -> None:
    """Re-aggregate units after answers arrived (recomputed from all their answers: idempotent)."""
    units_aggregate(unit_ids=unit_ids)


def enqueue_aggregation(unit_ids: list[int]) -> None:
    """Aggregate these units once the transaction that stored their answers commits."""
    ids = sorted(set(unit_ids))
    if ids:
        transaction.on_commit(lambda: units_aggregate_task.delay(ids))


@shared_task(name="annotator.crowd_sync_all", acks_late=True)
def crowd_sync_all() -> int:
    """Celery beat runs this every CROWD_SYNC_SECONDS: each published campaign on a platform that syncs
    is synced in its own task, so one campaign's failure (its platform refusing, say) does not hold up
    the others."""
    ids = [campaign.pk for campaign in selectors.campaigns_to_sync()]
    for campaign_id in ids:
        crowd_sync_campaign.delay(campaign_id)
    return len(ids)


@shared_task(name="annotator.crowd_sync_campaign", acks_late=True)
def crowd_sync_campaign(campaign_id: int) -> dict:
    from annotator.services.crowd_actions import campaign_sync

    campaign = Campaign.objects.get(pk=campaign_id)
    lines = campaign_sync(campaign=campaign)
    for line in lines:
        log.info("sync %s: %s", campaign.name, line)
    return {"lines": lines}
