"""Handing out local HITs: never the same unit twice, full units leave the pool, abandoned HITs return."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from annotator.models import Assignment, Campaign, Worker
from annotator.services.answers import answer_submit
from annotator.services.assignments import assignment_claim
from tests.factories import concept_network


def campaign(world_dir, answers: int = 2, units: tuple[str, ...] = ("car", "house", "tree")) -> Campaign:
    concept_network(world_dir, concepts=units, per_unit=20)
    call_command(
        "create_campaign",
        "c",
        "--network",
        "world",
        "--layers",
        "conv3",
        "--images-per-hit",
        "12",
        "--gold-per-hit",
        "2",
        "--answers-per-unit",
        str(answers),
    )
    call_command("publish", "c", "--backend", "local")
    return Campaign.objects.get(name="c")


def worker(name: str) -> Worker:
    return Worker.objects.create(kind=Worker.Kind.LINK, external_id=name)


def answer(assignment: Assignment) -> None:
    gold = list(assignment.hit.slots.filter(gold=True).values_list("position", flat=True))
    result = answer_submit(
        assignment_pk=assignment.pk,
        data={"description": "car", "category": "object", "mismatch": [str(p) for p in gold]},
    )
    assert result.created


@pytest.mark.django_db
def test_a_worker_gets_each_unit_once_until_nothing_is_left(world_dir) -> None:
    campaign(world_dir)
    w = worker("w")
    units = []
    while (a := assignment_claim(worker=w)) is not None:
        assert assignment_claim(worker=w) == a, "an open HIT is handed back until it is answered"
        units.append(a.hit.unit_id)
        answer(a)
    assert len(units) == 3 and len(set(units)) == 3


@pytest.mark.django_db
def test_a_unit_leaves_the_pool_when_its_answers_are_in(world_dir) -> None:
    campaign(world_dir, answers=2, units=("car",))
    a, b, c = worker("a"), worker("b"), worker("c")
    first, second = assignment_claim(worker=a), assignment_claim(worker=b)
    assert first.hit == second.hit and {first.slot, second.slot} == {0, 1}
    assert assignment_claim(worker=c) is None, "both answer slots are taken by open assignments"
    answer(first)
    answer(second)
    assert assignment_claim(worker=c) is None


@pytest.mark.django_db
def test_an_abandoned_hit_returns_to_the_pool_and_a_late_answer_is_kept(world_dir) -> None:
    campaign(world_dir, answers=1, units=("car",))
    a, b = worker("a"), worker("b")
    start = timezone.now()
    taken = assignment_claim(worker=a, now=start)
    assert assignment_claim(worker=b, now=start + timedelta(minutes=29)) is None
    later = assignment_claim(worker=b, now=start + timedelta(minutes=31))
    assert later is not None and later.hit == taken.hit and later.slot == 0
    taken.refresh_from_db()
    assert (taken.status, taken.slot) == ("abandoned", None)
    answer(taken)  # the first worker comes back late: the answer is stored, not lost
    answer(later)
    assert taken.hit.answers.count() == 2
    # The late worker does not get the unit again.
    assert assignment_claim(worker=a, now=start + timedelta(hours=1)) is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "sqlite", reason="needs a server database for concurrent writers")
def test_concurrent_claims_of_the_last_slot_give_it_once(world_dir) -> None:
    campaign(world_dir, answers=1, units=("car",))
    workers = [worker(f"w{i}") for i in range(6)]
    results, barrier = [], threading.Barrier(len(workers))

    def claim(w: Worker) -> None:
        barrier.wait()
        results.append(assignment_claim(worker=w))
        connection.close()

    threads = [threading.Thread(target=claim, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert Assignment.objects.count() == 1
