"""The queued path: a real worker consuming from the real broker (CELERY_BROKER_URL, Redis by
default) over the real database gives exactly the in-process result."""
import os
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import call_command
from django.db import connections

from annotator.models import Dissection
from config.celery import app
from tests.annotator.helpers import broker, dissect_args, snapshot

BROKER = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/15"


@pytest.fixture
def real_broker():
    with broker(BROKER):
        yield


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_queued_dissection_equals_in_process(image_dir, real_broker, capsys):
    call_command(*dissect_args(image_dir, name="in-process"))
    expected = snapshot("in-process")

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30,
                      queues=["activations", "sweeps", "segmentation"]):
        call_command(*dissect_args(image_dir, name="queued"), "--queue")
        assert "Queued 5 step(s) of stage 'activations' for queued" in capsys.readouterr().out
        deadline = time.monotonic() + 240
        while Dissection.objects.get(network__name="queued").stage != Dissection.Stage.DONE:
            assert time.monotonic() < deadline, "queued dissection did not finish"
            time.sleep(0.5)
    connections.close_all()
    assert snapshot("queued") == expected
