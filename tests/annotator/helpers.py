"""Small dissections that run in seconds: the demo network on the session's demo images."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection

from annotator.models import Network, TopImage
from annotator.services import artifacts

FAST = [
    "--top-k",
    "6",
    "--rf-images",
    "2",
    "--occluder-stride",
    "4",
    "--batch-size",
    "16",
    "--chunk-size",
    "10",
    "--quiet",
]


def dissect_args(images: Path, name: str = "demo", layers: str = "conv3,pool2") -> list[str]:
    return ["dissect", "--network", "demo", "--layers", layers, "--images", str(images), "--name", name, *FAST]


def snapshot(name: str) -> dict:
    """Everything a dissection produced, independent of database ids and file locations."""
    network = Network.objects.get(name=name)
    result = {}
    tops = (
        TopImage.objects.filter(unit__layer__network=network)
        .select_related("unit__layer", "image", "segmentation", "unit__receptive_field")
        .order_by("unit__layer__order", "unit__index", "rank")
    )
    for top in tops:
        mask = np.asarray(artifacts.read_picture(top.segmentation.mask_path))
        result[(top.unit.layer.name, top.unit.index, top.rank)] = (
            top.image.path,
            round(top.score, 4),
            top.argmax_y,
            top.argmax_x,
            round(top.unit.receptive_field.empirical_px, 4),
            int(mask.sum()),
        )
    return result


def use_broker(url: str, eager: bool) -> None:
    from config.celery import app

    app.conf.broker_url, app.conf.task_always_eager = url, eager
    # The app pools its connections and producers: drop those opened for the previous broker (an
    # earlier test's eager task opens them on the in-memory default), as Celery does after a fork.
    app._pool = None
    app.amqp._producer_pool = None


@contextlib.contextmanager
def broker(url: str) -> Iterator[None]:
    """Send tasks to a real broker (queues emptied first: nothing left over from another run)."""
    from config.celery import app

    previous = (app.conf.broker_url, app.conf.task_always_eager)
    # Celery prefers the CELERY_BROKER_URL variable to its configuration: point both at the broker.
    previous_env = os.environ.get("CELERY_BROKER_URL")
    os.environ["CELERY_BROKER_URL"] = url
    use_broker(url, False)
    with app.connection() as conn:
        for queue in ("activations", "sweeps", "segmentation", "celery"):
            with contextlib.suppress(Exception):  # a queue that does not exist yet is fine
                conn.default_channel.queue_purge(queue)
    try:
        yield
    finally:
        if previous_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = previous_env
        use_broker(*previous)


AMQP = os.environ.get("CELERY_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database, as a worker process must be told it."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(name: str, broker_url: str = AMQP, log: Path | None = None, **env: str) -> subprocess.Popen:
    """A worker process as a user starts one: its own environment, the test's database and broker.
    With `log`, it logs each task it finishes there."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_BROKER_URL": broker_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **env,
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "activations,sweeps,segmentation",
            "--pool",
            "solo",
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "INFO" if log else "WARNING",
            *(["-f", str(log)] if log else []),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@contextlib.contextmanager
def worker_processes() -> Iterator[list[subprocess.Popen]]:
    """A list to start worker processes into; those still running are stopped on the way out."""
    workers: list[subprocess.Popen] = []
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(30)
