"""Load test of the HIT page and submissions: gunicorn over PostgreSQL on loopback, driven by locust.

Simulated MTurk workers open HITs and submit answers; a share of them replay a submission or send
it twice at once. Bounded in users, answers per user and seconds. First one user alone (the
baseline), then `--users` at once, in the same process; afterwards the database is checked: every
accepted submission is stored exactly once, and nothing else is.

Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/unit_annotator python benchmarks/load.py`
(a throwaway database `<name>_load` is created beside the one named, and dropped at the end).
"""

from __future__ import annotations

import gevent.monkey  # isort: skip

gevent.monkey.patch_all()  # before anything opens a socket: locust's users are greenlets

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
from locust import HttpUser, constant, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.exception import StopUser  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.databases import drop_database, fresh_database  # noqa: E402


def prepare(world_dir: Path) -> list[dict]:
    """A published MTurk campaign of six HITs; returns each HIT's key and slots."""
    import django

    django.setup()
    from django.core.management import call_command

    from annotator.models import Hit
    from pipeline import demo_world
    from tests.factories import concept_network, put_on_mturk

    call_command("migrate", verbosity=0)
    world = demo_world.generate(world_dir, 240, seed=5)
    concept_network(world, name="load")
    call_command("create_campaign", "load", "--network", "load", "--layers", "conv3", stdout=open(os.devnull, "w"))  # noqa: SIM115
    put_on_mturk("load")
    return [
        {
            "key": str(hit.key),
            "hit_id": hit.remote_id,
            "gold": list(hit.slots.filter(gold=True).values_list("position", flat=True)),
            "own": list(hit.slots.filter(gold=False).values_list("position", flat=True)),
        }
        for hit in Hit.objects.filter(campaign__name="load")
    ]


def serve(env: dict, port: int, workers: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--timeout",
            "60",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("gunicorn did not start") from None
            time.sleep(0.2)


TOKEN = re.compile(r'name="token" value="([^"]+)"')


def make_user(hits: list[dict], answers: int, accepted: set, stats: dict):
    class Worker(HttpUser):
        wait_time = constant(0)

        def on_start(self) -> None:
            self.worker = f"W{uuid.uuid4().hex[:12].upper()}"
            self.todo = random.sample(hits, min(answers, len(hits)))  # MTurk never gives a worker a unit twice

        @task
        def answer(self) -> None:
            if not self.todo:
                raise StopUser()
            hit = self.todo.pop()
            assignment = f"A{uuid.uuid4().hex[:20].upper()}"
            params = {
                "assignmentId": assignment,
                "hitId": hit["hit_id"],
                "workerId": self.worker,
                "turkSubmitTo": "https://workersandbox.mturk.com",
            }
            page = self.retrying(lambda: self.client.get(f"/hit/{hit['key']}/", name="open HIT", params=params))
            found = TOKEN.search(page.text or "")
            if page.status_code != 200 or not found:
                return
            # From here until its outcome is known the submission is in flight: a run cut off by its
            # time limit may leave it stored with nobody told (which a worker would see as a lost answer).
            stats["in_flight"].add(assignment)
            data = {
                "token": found.group(1),
                "turkSubmitTo": "https://workersandbox.mturk.com",
                "description": random.choice(["car", "house", "tree"]),
                "category": "object",
                "mismatch": [str(p) for p in hit["gold"] + random.sample(hit["own"], 3)],
            }
            roll = random.random()
            if roll < 0.1:  # a double click: two posts at once, on two connections
                url = f"{self.host}/hit/{hit['key']}/"
                posts = [gevent.spawn(requests.post, url, data=data, timeout=60) for _ in range(2)]
                gevent.joinall(posts)
                codes = [p.value.status_code if p.value is not None else 0 for p in posts]
                stats["doubles"] += 1
                stats["double_codes"].extend(codes)
                if 200 not in codes:  # both arrived while the database was away: the worker submits again
                    codes.append(
                        self.retrying(
                            lambda: self.client.post(f"/hit/{hit['key']}/", data=data, name="submit")
                        ).status_code
                    )
            else:
                codes = [
                    self.retrying(lambda: self.client.post(f"/hit/{hit['key']}/", data=data, name="submit")).status_code
                ]
                if roll < 0.3:  # a replay, later
                    codes.append(
                        self.retrying(
                            lambda: self.client.post(f"/hit/{hit['key']}/", data=data, name="submit (replay)")
                        ).status_code
                    )
                    stats["replays"] += 1
            if 200 in codes:
                accepted.add(assignment)
            stats["in_flight"].discard(assignment)

        def retrying(self, send, tries: int = 20):
            """What a worker does when the site says 'try again in a moment': waits, sends again."""
            for _ in range(tries):
                response = send()
                if response.status_code not in (500, 502, 503, 0):
                    return response
                stats["retry_codes"][response.status_code] += 1
                gevent.sleep(1)
            return response

    return Worker


def run(host: str, user_class, users: int, seconds: float) -> dict:
    env = Environment(user_classes=[user_class], host=host)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=min(users, 100))
    started = time.monotonic()
    gevent.spawn_later(seconds, runner.quit)
    while runner.user_count == 0 and time.monotonic() - started < 5:
        gevent.sleep(0.05)
    while runner.user_count and time.monotonic() - started < seconds:
        gevent.sleep(0.1)
    runner.quit()
    elapsed = time.monotonic() - started
    total = env.stats.total
    out = {"requests": total.num_requests, "failures": total.num_failures, "rps": total.num_requests / elapsed}
    for name in ("open HIT", "submit"):
        entry = env.stats.get(name, "GET" if name == "open HIT" else "POST")
        out[name] = {
            "p50": entry.get_response_time_percentile(0.5),
            "p99": entry.get_response_time_percentile(0.99),
            "n": entry.num_requests,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--answers", type=int, default=3, help="HITs each simulated worker answers")
    parser.add_argument("--seconds", type=float, default=90, help="Upper bound of the loaded run")
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="50 users, 2 answers each: a smoke run")
    parser.add_argument(
        "--restart-database",
        action="store_true",
        help="Restart PostgreSQL (pg_ctlcluster, local cluster) a few seconds into the loaded run",
    )
    args = parser.parse_args()
    if args.quick:
        args.users, args.answers, args.seconds = 50, 2, 60
    url = fresh_database(os.environ.get("DATABASE_URL", ""))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    tmp = Path(tempfile.mkdtemp(prefix="load-"))
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    server = None
    try:
        hits = prepare(tmp / "world")
        port = 18000 + os.getpid() % 1000
        env = {
            **os.environ,
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "ERROR",
            "HIT_PAGE_OPENS_PER_MINUTE": "0",  # every simulated worker comes from this one address
        }
        server = serve(env, port, args.gunicorn_workers)
        host = f"http://127.0.0.1:{port}"
        accepted: set[str] = set()
        stats = {
            "replays": 0,
            "doubles": 0,
            "double_codes": [],
            "retry_codes": Counter(),
            "restart_s": None,
            "in_flight": set(),
        }
        for _ in range(4 * args.gunicorn_workers):  # each worker process imports the app on its first request
            requests.get(f"{host}/accounts/login/", timeout=60)
        alone = run(host, make_user(hits, len(hits), accepted, stats), 1, 15)
        restart = gevent.spawn_later(1.0, restart_database, stats) if args.restart_database else None
        loaded = run(host, make_user(hits, args.answers, accepted, stats), args.users, args.seconds)
        if restart is not None:
            restart.join()  # the check below needs the database back
        report(alone, loaded, args.users, accepted, stats)
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        from django.db import connections

        connections.close_all()
        drop_database(url)


def restart_database(stats: dict) -> None:
    """Restart the local PostgreSQL cluster while submissions are in flight."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    started = time.monotonic()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True)
    stats["restart_s"] = time.monotonic() - started


def report(alone: dict, loaded: dict, users: int, accepted: set, stats: dict) -> None:
    from django.db import connections

    from annotator.models import Answer

    connections.close_all()  # our own connection did not survive a restart
    stored = list(Answer.objects.values_list("assignment__external_id", flat=True))
    # Each answer stored once; every accepted one stored; any other stored one was in flight when a
    # run hit its time limit (its response never came back), never an answer that was refused.
    cut_off = stats["in_flight"]
    unacknowledged = set(stored) - accepted
    exactly_once = len(stored) == len(set(stored)) and accepted <= set(stored) and unacknowledged <= cut_off
    for name in ("open HIT", "submit"):
        a, b = alone[name], loaded[name]
        print(
            f"{name}: 1 user p50 {a['p50']:.0f} ms; {users} users p50 {b['p50']:.0f} ms, p99 {b['p99']:.0f} ms "
            f"({b['n']} requests) -> p50 ratio {b['p50'] / max(a['p50'], 1):.1f}x"
        )
    asked_to_retry = sum(stats["retry_codes"].values())
    print(
        f"{users} users: {loaded['requests']} requests, {loaded['rps']:.0f} requests/s, {loaded['failures']} failed "
        f"({asked_to_retry} of them asked the worker to retry); {stats['replays']} replays, {stats['doubles']} "
        f"double submits (responses: {sorted(set(stats['double_codes']))})"
    )
    if stats["restart_s"] is not None:
        print(
            f"PostgreSQL restarted during the run ({stats['restart_s']:.1f} s): responses that asked to retry "
            f"{dict(stats['retry_codes'])}; every worker retried until its answer was stored"
        )
    if cut_off:
        print(
            f"{len(cut_off)} submission(s) in flight when a run hit its time limit: {len(unacknowledged)} of them "
            "stored (the server finished them), none twice"
        )
    print(
        f"stored answers: {len(stored)}, accepted submissions: {len(accepted)} -> "
        f"{'every accepted submission stored exactly once' if exactly_once else 'MISMATCH'}"
        f"{', nothing else' if exactly_once and not unacknowledged else ''}"
    )
    if not exactly_once or loaded["failures"] > asked_to_retry or 500 in stats["retry_codes"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
