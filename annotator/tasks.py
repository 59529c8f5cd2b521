"""Celery tasks: each takes ids, runs one idempotent step of a service, then lets the dissection
move on. Running a task twice (a redelivery after a lost worker) does nothing the second time."""
from __future__ import annotations

from celery import shared_task
from django.db import transaction

from annotator.models import Dissection
from annotator.services import dissection as service
from annotator.services.aggregation import units_aggregate

QUEUES = {"activation_chunk": "activations", "top_images_merge": "activations", "image_sweep": "sweeps",
          "unit_segment": "segmentation"}


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


@shared_task(name="annotator.unit_aggregate", acks_late=True)
def unit_aggregate(unit_id: int) -> None:
    """Re-aggregate one unit after an answer arrived (recomputed from all its answers: idempotent)."""
    units_aggregate(unit_ids=[unit_id])


def enqueue_aggregation(unit_id: int) -> None:
    transaction.on_commit(lambda: unit_aggregate.delay(unit_id))
