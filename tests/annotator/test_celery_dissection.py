"""The queued path: a real worker consuming from the real broker (CELERY_BROKER_URL, Redis by
default) over the real database gives exactly the in-process result."""

import os
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import CommandError, call_command
from django.db import connections

from annotator.models import Dissection
from annotator.services.dissection import DissectionError
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

    with start_worker(
        app,
        pool="solo",
        perform_ping_check=False,
        shutdown_timeout=30,
        queues=["activations", "sweeps", "segmentation"],
    ):
        call_command(*dissect_args(image_dir, name="queued"), "--queue")
        assert "Queued 5 step(s) of stage 'activations' for queued" in capsys.readouterr().out
        deadline = time.monotonic() + 240
        while Dissection.objects.get(network__name="queued").stage != Dissection.Stage.DONE:
            assert time.monotonic() < deadline, "queued dissection did not finish"
            time.sleep(0.5)
    connections.close_all()
    assert snapshot("queued") == expected


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # queued steps are sent when the transaction commits
def test_a_workers_own_device_overrides_the_dissections(image_dir, settings):
    """A GPU dissection can be queued from a machine without a GPU; a worker without one refuses
    its steps with the reason, and the same worker told DISSECT_DEVICE=cpu runs them."""
    call_command(*dissect_args(image_dir, name="cpu"))
    expected = snapshot("cpu")
    with pytest.raises(CommandError, match="no CUDA device"):
        call_command(*dissect_args(image_dir, name="refused"), "--device", "cuda")
    assert not Dissection.objects.filter(network__name="refused").exists()
    # Queued with eager tasks: this process is the worker, and it has no GPU.
    with pytest.raises(DissectionError, match=r"cuda \(--device\).*DISSECT_DEVICE=cpu"):
        call_command(*dissect_args(image_dir, name="gpu"), "--device", "cuda", "--queue")
    gpu = Dissection.objects.get(network__name="gpu")
    assert gpu.settings["speed"]["device"] == "cuda" and gpu.stage == Dissection.Stage.ACTIVATIONS
    settings.DISSECT_DEVICE = "cpu"
    call_command(*dissect_args(image_dir, name="gpu"), "--device", "cuda", "--queue", "--batch-size", "7")
    assert Dissection.objects.get(network__name="gpu").settings["speed"] == {"batch_size": 7, "device": "cuda"}
    assert Dissection.objects.get(network__name="gpu").stage == Dissection.Stage.DONE
    # Another batch size rounds the activations differently (seen in the 7th digit of a score).
    got = snapshot("gpu")
    assert got.keys() == expected.keys()
    for key, (path, score, *rest) in expected.items():
        assert (got[key][0], *got[key][2:]) == (path, *rest), key
        assert got[key][1] == pytest.approx(score, rel=1e-5, abs=2e-4), key
    settings.DISSECT_DEVICE = "tpu"
    with pytest.raises(DissectionError, match="Unknown device 'tpu' \\(DISSECT_DEVICE\\)"):
        call_command(*dissect_args(image_dir, name="gpu2"), "--device", "cuda", "--queue")
