"""One person, one vote on MTurk: an answer counts only when MTurk lists its assignment under the
worker stored with it (every mismatch reported), and an assignment made up in a worker's name cannot
keep their real one from taking their answer."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from annotator.crowds.mturk.sync import campaign_sync
from annotator.models import Answer, Assignment, Hit, UnitLabel
from tests.annotator.test_answer_trust import listed, open_page, submit
from tests.factories import concept_network, put_on_mturk

pytestmark = pytest.mark.django_db


@pytest.fixture
def mturk_hit(world_dir) -> Hit:
    concept_network(world_dir, concepts=("car", "house"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--answers-per-unit", "2")
    return put_on_mturk("c")[0]


def test_an_answer_under_a_made_up_worker_id_is_never_counted_and_the_mismatch_is_reported(
    mturk_hit,
    client,
    stubbed_mturk,
) -> None:
    hit = mturk_hit
    # A real worker (REALWORKER on MTurk) answers under made-up worker ids, and a second worker honestly.
    submit(client, hit, open_page(client, hit, "REALASSIGN1", "AFAKE1"))
    submit(client, hit, open_page(client, hit, "REALASSIGN2", "HONEST"))
    answers = list(Answer.objects.select_related("assignment", "worker").order_by("id"))
    forged, honest = answers
    listed(stubbed_mturk, hit, answers, workers={forged.pk: "REALWORKER"})
    report = campaign_sync(campaign=hit.campaign, client=stubbed_mturk.client)
    forged.refresh_from_db()
    honest.refresh_from_db()
    assert (forged.confirmation, forged.counts) == ("mismatch", False)
    assert (honest.confirmation, honest.counts) == ("confirmed", True)
    assert report.confirmed == 1 and report.matched == 1
    line = next(line for line in report.lines() if line.startswith("worker mismatch:"))
    assert "REALASSIGN1" in line and "MTurk lists worker REALWORKER" in line and "AFAKE1" in line
    assert "another worker" in forged.excluded_because
    assert UnitLabel.objects.get(unit=hit.unit).answers == 1
    listed(stubbed_mturk, hit, answers, workers={forged.pk: "REALWORKER"})
    again = campaign_sync(campaign=hit.campaign, client=stubbed_mturk.client)  # twice: the same
    assert again.confirmed == 0 and len(again.mismatched) == 1


def test_a_made_up_assignment_in_a_workers_name_steps_aside_for_the_one_mturk_issued(
    mturk_hit,
    client,
    stubbed_mturk,
) -> None:
    hit = mturk_hit
    submit(client, hit, open_page(client, hit, "MADEUP", "VICTIM"), description="forged")  # the attacker
    page = open_page(client, hit, "ISSUED", "VICTIM")  # the victim opens the assignment MTurk gave them
    assert page.status_code == 200 and "answered this unit already" not in page.content.decode()
    assert submit(client, hit, page, description="car").status_code == 200
    real = Answer.objects.select_related("assignment", "worker").get(assignment__external_id="ISSUED")
    assert real.description == "car", "the victim's answer lands on their own assignment"
    assert Assignment.objects.get(external_id="MADEUP").status == "abandoned"
    assert Answer.objects.filter(assignment__external_id="MADEUP").exists(), "the made-up one is kept"
    listed(stubbed_mturk, hit, [real])
    campaign_sync(campaign=hit.campaign, client=stubbed_mturk.client)
    counted = Answer.objects.filter(counts=True)
    assert list(counted.values_list("assignment__external_id", flat=True)) == ["ISSUED"]
    # Once MTurk has confirmed an answer, a second assignment id for the same worker and HIT is refused.
    again = open_page(client, hit, "SECOND", "VICTIM")
    assert "answered this unit already" in again.content.decode()


def test_gold_warnings_cannot_be_asked_for_again_and_again_to_find_the_gold(mturk_hit, client) -> None:
    """Made-up assignments, each asking for its two warnings: one client address gets the warnings the
    HIT's own workers could need (2 workers x 2), then every try is stored as it is."""
    import re

    hit = mturk_hit
    warned = 0
    for n in range(6):
        page = open_page(client, hit, f"PROBE{n}", f"PROBER{n}")
        token = re.search(r'name="token" value="([^"]+)"', page.content.decode()).group(1)
        for _ in range(2):  # mark nothing: a gold image is surely unmarked
            response = client.post(f"/hit/{hit.key}/", {"token": token, "description": "car", "category": "object"})
            if 'id="gold-warning"' not in response.content.decode():
                break
            warned += 1
    assert warned == 4, "the HIT's workers' share of warnings, then none"
    assert Answer.objects.filter(assignment__external_id__startswith="PROBE").count() >= 4
    other = Client(REMOTE_ADDR="192.0.2.7")  # another client still gets its warnings
    page = open_page(other, hit, "HONEST1", "HONEST")
    token = re.search(r'name="token" value="([^"]+)"', page.content.decode()).group(1)
    response = other.post(f"/hit/{hit.key}/", {"token": token, "description": "car", "category": "object"})
    assert 'id="gold-warning"' in response.content.decode()


def test_marking_every_image_fails_a_review_rule(mturk_hit, client) -> None:
    from annotator.task_kinds import task_for

    hit = mturk_hit
    page = open_page(client, hit, "ALLMARKED", "LAZY")
    every = [str(p) for p in hit.slots.values_list("position", flat=True)]
    import re

    token = re.search(r'name="token" value="([^"]+)"', page.content.decode()).group(1)
    client.post(f"/hit/{hit.key}/", {"token": token, "description": "car", "category": "object", "mismatch": every})
    answer = Answer.objects.get(assignment__external_id="ALLMARKED")
    assert answer.gold_passed, "every gold image is marked, so the gold check alone passes it"
    assert "marked-all" in task_for(hit.campaign).failed_rules(answer, 0)
