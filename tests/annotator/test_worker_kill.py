"""Killing a Celery worker for real (SIGKILL, in the middle of the occlusion sweeps) loses nothing
and duplicates nothing: tasks are acknowledged late, so RabbitMQ hands the killed worker's task to
the next worker, and every step is idempotent. The result equals the in-process dissection."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from django.core.management import call_command
from django.db import connections

from annotator.models import Dissection, ImageSweep, ReceptiveField, TopImage
from tests.annotator.helpers import AMQP, broker, dissect_args, snapshot, start_worker, wait, worker_processes


def sweeping(queued: Dissection) -> bool:
    """The dissection is in its sweeps, with a few done and (with luck) most still to do."""
    queued.refresh_from_db()
    return queued.stage == "sweeps" and ImageSweep.objects.filter(dissection=queued, done=True).count() >= 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_sweep_loses_and_duplicates_nothing(image_dir) -> None:
    call_command(*dissect_args(image_dir, name="in-process"))
    expected = snapshot("in-process")
    with worker_processes() as workers, broker(AMQP):
        workers.append(start_worker("first"))
        call_command(*dissect_args(image_dir, name="queued"), "--queue")
        queued = Dissection.objects.get(network__name="queued")

        wait(lambda: sweeping(queued), 180, "the first worker never reached the sweeps")
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(30)
        done_at_kill = ImageSweep.objects.filter(dissection=queued, done=True).count()
        total = ImageSweep.objects.filter(dissection=queued).count()
        assert done_at_kill < total, "the kill came too late to interrupt the sweeps"
        workers.append(start_worker("second"))
        wait(
            lambda: Dissection.objects.get(pk=queued.pk).stage == "done",
            300,
            "the second worker did not finish the dissection",
        )
    connections.close_all()
    assert snapshot("queued") == expected
    # Nothing twice: one sweep per image, one RF per unit, K top images per unit.
    sweeps = ImageSweep.objects.filter(dissection__network__name="queued")
    assert sweeps.count() == sweeps.values("image").distinct().count() == total
    assert ReceptiveField.objects.filter(unit__layer__network__name="queued").count() == len(
        {key[:2] for key in expected}
    )
    assert TopImage.objects.filter(unit__layer__network__name="queued").count() == len(expected)


def rabbitmq_app(action: str) -> None:
    subprocess.run(["rabbitmqctl", action], check=True, capture_output=True, timeout=120)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_broker_restarting_mid_dissection_stops_nothing(image_dir) -> None:
    """RabbitMQ stops during the sweeps and comes back: the worker reconnects, unacknowledged tasks
    are delivered again, and the dissection ends equal to the in-process one."""
    call_command(*dissect_args(image_dir, name="in-process"))
    expected = snapshot("in-process")
    with worker_processes() as workers, broker(AMQP):
        workers.append(worker := start_worker("steady"))
        call_command(*dissect_args(image_dir, name="queued"), "--queue")
        queued = Dissection.objects.get(network__name="queued")

        wait(lambda: sweeping(queued), 180, "the worker never reached the sweeps")
        rabbitmq_app("stop_app")
        try:
            time.sleep(3)
            assert Dissection.objects.get(pk=queued.pk).stage != "done"
        finally:
            rabbitmq_app("start_app")
        wait(
            lambda: Dissection.objects.get(pk=queued.pk).stage == "done",
            300,
            "the dissection did not finish after the broker came back",
        )
        assert worker.poll() is None, "the worker died with the broker"
    connections.close_all()
    assert snapshot("queued") == expected
