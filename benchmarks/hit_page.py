"""HIT page benchmark: server time and queries of the MTurk HIT page and of a submission, in process
(Django's test client, no network), on a throwaway database (the configured engine's test database).

- GET of an accepted HIT with 60 image slots: median ms (target under 30) and queries, and the same
  for 12 and 120 slots (target: the same number of queries whatever the size);
- a submission (POST, stored once) and its queries;
- baseline: the login page, a small Django page through the same middleware, as a ratio.

Run: `make bench` (or `python benchmarks/hit_page.py [--quick]`); `DATABASE_URL` picks the database.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from annotator.models import Hit  # noqa: E402
from pipeline import demo_world  # noqa: E402
from tests.factories import concept_network, put_on_mturk  # noqa: E402


def timed(request, repeats: int) -> tuple[float, int]:
    """Median milliseconds and the query count of one call (the last)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = request()
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    with CaptureQueriesContext(connection) as queries:
        request()
    return statistics.median(times), len(queries)


def build(world: Path, slots: int) -> Hit:
    name = f"bench{slots}"
    concept_network(world, name=name, concepts=("car", "house", "tree", "boat"), per_unit=slots - 3)
    call_command(
        "create_campaign",
        name,
        "--network",
        name,
        "--layers",
        "conv3",
        "--images-per-hit",
        str(slots),
        stdout=open(os.devnull, "w"),  # noqa: SIM115
    )
    return put_on_mturk(name)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 10 if args.quick else 60
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings.MEDIA_ROOT = Path(tmp) / "media"
            settings.HIT_PAGE_OPENS_PER_MINUTE = 0  # one client opens hundreds of pages here
            world = demo_world.generate(Path(tmp) / "world", 500, seed=1)
            client = Client()
            login_ms, login_q = timed(lambda: client.get("/accounts/login/"), repeats)
            print(f"baseline: login page {login_ms:.2f} ms median, {login_q} queries")
            rows = {}
            for slots in (12, 60, 120):
                hit = build(world, slots)
                url = f"/hit/{hit.key}/"
                params = {
                    "assignmentId": f"AOPEN{slots}",
                    "workerId": "WOPEN",
                    "hitId": hit.remote_id,
                    "turkSubmitTo": "https://workersandbox.mturk.com",
                }
                client.get(url, params)  # the first visit fixes the assignment's deadline
                page_ms, page_q = timed(lambda url=url, params=params: client.get(url, params), repeats)
                preview_ms, preview_q = timed(lambda url=url: client.get(url), repeats)
                rows[slots] = (page_ms, page_q)
                print(
                    f"HIT page, {slots:3d} slots: {page_ms:6.2f} ms median, {page_q} queries "
                    f"({page_ms / login_ms:.2f}x the login page); preview {preview_ms:.2f} ms, {preview_q} queries"
                )
            hit = Hit.objects.filter(campaign__name="bench60").first()
            gold = [str(p) for p in hit.slots.filter(gold=True).values_list("position", flat=True)]
            post_times, post_queries = [], []
            for i in range(repeats):
                page = client.get(
                    f"/hit/{hit.key}/", {"assignmentId": f"A{i}", "workerId": f"W{i}", "hitId": hit.remote_id}
                ).content
                token = re.search(rb'name="token" value="([^"]+)"', page).group(1).decode()
                data = {"token": token, "description": "car", "category": "object", "mismatch": gold}
                with CaptureQueriesContext(connection) as queries:
                    start = time.perf_counter()
                    response = client.post(f"/hit/{hit.key}/", data)
                    post_times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200 and b"mturk-submit" in response.content
                post_queries.append(len(queries))
            print(
                f"submission (60 slots, stored once): {statistics.median(post_times):.2f} ms median, "
                f"{max(post_queries)} queries"
            )
            constant = len({q for _, q in rows.values()}) == 1
            print(
                f"queries constant over 12/60/120 slots: {'yes' if constant else 'NO'}; "
                f"60-slot page under 30 ms: {'yes' if rows[60][0] < 30 else 'NO'} "
                f"(database: {connection.vendor})"
            )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
