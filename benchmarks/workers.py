"""Dissection across Celery workers: the same queued dissection with one worker and with two, on
PostgreSQL and RabbitMQ, in the same process (the one-worker run is the baseline of the ratio).

Prints each stage's wall time, the speed-up, the per-image work (activation pass, occlusion sweep)
and what is shared, and projects one layer of 200,000 images on N workers from those figures.

Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/unit_annotator python benchmarks/workers.py`
(a throwaway database `<name>_workers` is created and dropped; CELERY_BROKER_URL defaults to RabbitMQ).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.databases import drop_database, fresh_database  # noqa: E402

BROKER = os.environ.get("CELERY_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    images = 120 if args.quick else args.images
    url = fresh_database(os.environ.get("DATABASE_URL", ""), suffix="workers")
    tmp = Path(tempfile.mkdtemp(prefix="workers-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(tmp / "media"),
        "CELERY_BROKER_URL": BROKER,
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from annotator.models import Dissection, ImageSweep
    from config.celery import app
    from pipeline import demo_world

    call_command("migrate", verbosity=0)
    world = demo_world.generate(tmp / "world", images, seed=3)
    with app.connection() as conn:
        for queue in ("activations", "sweeps", "segmentation"):
            with contextlib.suppress(Exception):  # a queue that does not exist yet is fine
                conn.default_channel.queue_purge(queue)
    results = {}
    try:
        for workers in (1, 2):
            name = f"w{workers}"
            procs = [
                subprocess.Popen(
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
                        f"{name}-{i}@%h",
                        "--without-mingle",
                        "--without-gossip",
                        "-l",
                        "WARNING",
                    ],
                    cwd=ROOT,
                    env={**env, "OMP_NUM_THREADS": str(max(1, 2 // workers))},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i in range(workers)
            ]
            time.sleep(3)
            start = time.monotonic()
            call_command(
                "dissect",
                "--network",
                "demo",
                "--layers",
                "conv3",
                "--images",
                str(world / "images"),
                "--name",
                name,
                "--rf-images",
                "20",
                "--queue",
                "--quiet",
            )
            stages, last, seen = {}, time.monotonic(), "activations"
            while True:
                stage = Dissection.objects.get(network__name=name).stage
                if stage != seen:
                    stages[seen], last, seen = time.monotonic() - last, time.monotonic(), stage
                if stage == "done":
                    break
                time.sleep(0.2)
            total = time.monotonic() - start
            sweeps = ImageSweep.objects.filter(dissection__network__name=name, done=True)
            results[workers] = {
                "total": total,
                "stages": stages,
                "sweeps": sweeps.count(),
                "sweep_s": sum(s.seconds or 0 for s in sweeps) / max(1, sweeps.count()),
            }
            for proc in procs:
                proc.terminate()
                proc.wait(30)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(url)
    one, two = results[1], results[2]
    for workers, r in results.items():
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in r["stages"].items())
        print(
            f"{workers} worker(s): {r['total']:.1f} s ({stages}); {r['sweeps']} sweeps of unique top images, "
            f"{r['sweep_s']:.2f} s each on average"
        )
    print(
        f"{images} images, demo network conv3, RFs from each unit's top 20: 2 workers on this 2-core machine -> "
        f"{one['total'] / two['total']:.2f}x the speed of 1"
    )
    overhead = one["stages"].get("sweeps", 0) / max(1, one["sweeps"]) - one["sweep_s"]
    print(
        f"per unique top image: {one['sweep_s']:.2f} s of sweep and {max(0.0, overhead):.2f} s of task overhead "
        "(broker, database, files); the activation pass and the merge are shared by all units"
    )


if __name__ == "__main__":
    main()
