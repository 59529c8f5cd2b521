"""One person, one vote on MTurk: an answer counts only when MTurk lists its assignment under the
worker stored with it (every mismatch reported), and an assignment made up in a worker's name cannot
keep their real one from taking their answer."""

from __future__ import annotations

import pytest
from django.core.management import call_command

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
