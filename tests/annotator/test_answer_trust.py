"""Answers you can trust: a forged MTurk assignment is stored but never counts, a HIT never counts more
answers than it asked for, and the submission path survives old tabs, blocks, finished campaigns and
concurrent submits. MTurk's side is botocore's Stubber, checked against MTurk's service model."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from botocore.stub import ANY
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from annotator import selectors
from annotator.crowds.mturk.sync import campaign_sync
from annotator.models import Answer, Assignment, Campaign, Hit, UnitLabel, Worker
from annotator.services import review
from annotator.services.payments import bonus_send
from annotator.services.workers import lab_link_create
from annotator.task_kinds import task_for
from mturk.question import answers_xml
from tests.factories import answer_hit, concept_network, put_on_mturk

ALICE = review.Reviewer("alice")


@pytest.fixture
def mturk_hit(world_dir) -> Hit:
    concept_network(world_dir, concepts=("car", "house"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--answers-per-unit", "2")
    return put_on_mturk("c")[0]


def open_page(client: Client, hit: Hit, assignment: str, worker: str, hit_id: str | None = None):
    return client.get(
        f"/hit/{hit.key}/",
        {
            "assignmentId": assignment,
            "workerId": worker,
            "hitId": hit.remote_id if hit_id is None else hit_id,
            "turkSubmitTo": "https://workersandbox.mturk.com",
        },
    )


def submit(client: Client, hit: Hit, page, description: str = "car"):
    token = re.search(r'name="token" value="([^"]+)"', page.content.decode()).group(1)
    gold = [str(p) for p in hit.slots.filter(gold=True).values_list("position", flat=True)]
    return client.post(
        f"/hit/{hit.key}/",
        {
            "token": token,
            "description": description,
            "category": "object",
            "mismatch": gold,
            "turkSubmitTo": "https://workersandbox.mturk.com",
        },
    )


def listed(stubber, hit: Hit, answers: list[Answer], workers: dict[int, str] | None = None) -> None:
    """MTurk's answers to one sync of the campaign: it lists these assignments of `hit` as submitted,
    with the copies the HIT's page handed it, and none of the campaign's other HITs; `workers` names
    the worker MTurk lists for an answer (by its pk) where it is not the one stored."""
    for each in hit.campaign.hits.order_by("id"):
        stubber.add_response(
            "get_hit",
            {
                "HIT": {
                    "HITId": each.remote_id,
                    "HITStatus": "Assignable",
                    "Expiration": datetime(2030, 1, 1, tzinfo=UTC),
                }
            },
            {"HITId": each.remote_id},
        )
        items = [
            {
                "AssignmentId": a.assignment.external_id,
                "WorkerId": (workers or {}).get(a.pk, a.worker.external_id),
                "HITId": each.remote_id,
                "AssignmentStatus": "Submitted",
                "AcceptTime": a.opened_at,
                "SubmitTime": a.submitted_at,
                "Answer": answers_xml(task_for(hit.campaign).platform_fields(a)),  # the page's copy
            }
            for a in answers
            if each.pk == hit.pk
        ]
        stubber.add_response(
            "list_assignments_for_hit",
            {"Assignments": items},
            {"HITId": each.remote_id, "MaxResults": 100, "AssignmentStatuses": ANY},
        )


@pytest.mark.django_db
def test_forged_assignments_are_kept_but_count_only_once_mturk_lists_them(mturk_hit, client, stubbed_mturk) -> None:
    hit = mturk_hit
    for n in range(5):  # anyone who saw the HIT's URL can make up assignment and worker ids
        assert (
            submit(client, hit, open_page(client, hit, f"FORGED{n}", f"NOBODY{n}"), description="forged").status_code
            == 200
        )
    assert Answer.objects.filter(hit=hit).count() == 5, "every answer is stored"
    assert not Answer.objects.filter(counts=True).exists()
    call_command("aggregate", "--network", "world")
    label = UnitLabel.objects.get(unit=hit.unit)
    assert (label.answers, label.label, label.status) == (0, "", "pending")
    counts = selectors.campaign_counts(hit.campaign)
    assert (counts["answers"], counts["unconfirmed"], counts["complete"]) == (0, 5, 0)

    # Two real workers answer; MTurk lists exactly those two.
    for n in (1, 2):
        submit(client, hit, open_page(client, hit, f"REAL{n}", f"WORKER{n}"))
    real = list(
        Answer.objects.filter(assignment__external_id__startswith="REAL").select_related("assignment", "worker")
    )
    listed(stubbed_mturk, hit, real)
    report = campaign_sync(campaign=hit.campaign, client=stubbed_mturk.client)
    assert report.confirmed == 2
    assert set(Answer.objects.filter(counts=True).values_list("pk", flat=True)) == {a.pk for a in real}
    label.refresh_from_db()
    assert (label.answers, label.label, label.status) == (2, "car", "detector")
    # After the forged assignments' deadline MTurk still does not know them: unknown, never paid.
    listed(stubbed_mturk, hit, real)
    later = timezone.now() + timedelta(hours=2)
    report = campaign_sync(campaign=hit.campaign, client=stubbed_mturk.client, now=later)
    forged = Answer.objects.filter(description="forged")
    assert set(forged.values_list("confirmation", flat=True)) == {"unknown"}
    assert all("unknown to mturk" in a.excluded_because for a in forged)
    assert sum("unknown to MTurk, not counted" in line for line in report.only_here) == 5
    with pytest.raises(review.ReviewError, match="MTurk does not know this assignment"):
        review.answer_approve(answer_id=forged[0].pk, reviewer=ALICE)
    with pytest.raises(review.ReviewError, match="no bonus is paid"):
        bonus_send(answer_id=forged[0].pk, amount="1.00", reason="x", reviewer=ALICE)


@pytest.mark.django_db
def test_the_dashboard_shows_uncounted_answers_apart_with_why(mturk_hit, client, admin_client) -> None:
    hit = mturk_hit
    submit(client, hit, open_page(client, hit, "FORGED1", "NOBODY1"), description="forged")
    page = admin_client.get(f"/dashboard/unit/{hit.unit_id}/").content.decode()
    kept = page[page.index('id="kept-answers"') :]
    assert "forged" in kept and "unconfirmed (sync has not seen it on Mechanical Turk yet)" in kept, "its own platform"
    assert "forged" not in page[page.index('id="answers"') : page.index('id="kept-answers"')]
    campaign = admin_client.get(f"/dashboard/campaign/{hit.campaign_id}/").content.decode()
    assert "1 unconfirmed" in campaign


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"hitId": ""}, "valid hitId"),
        ({"hitId": "H2"}, "another HIT"),
        ({"assignmentId": "A\x00B"}, "valid assignmentId"),
        ({"assignmentId": "A" * 65}, "valid assignmentId"),
        ({"assignmentId": "a-b"}, "valid assignmentId"),
        ({"workerId": "W<1>"}, "valid workerId"),
    ],
)
def test_the_page_wants_mturks_own_ids_and_this_hits_id(mturk_hit, client, params, problem) -> None:
    query = {"assignmentId": "A1", "workerId": "W1", "hitId": mturk_hit.remote_id, **params}
    response = client.get(f"/hit/{mturk_hit.key}/", query)
    assert response.status_code == 400 and problem in response.content.decode()
    assert not Assignment.objects.exists()


@pytest.mark.django_db
def test_a_hit_never_counts_more_answers_than_it_asked_for(world_dir) -> None:
    concept_network(world_dir, concepts=("car",))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--answers-per-unit", "2")
    call_command("publish", "c", "--backend", "local")
    hit = Hit.objects.get()
    first, second, third = (answer_hit(hit, w, "car", "object") for w in ("w1", "w2", "w3"))
    third.refresh_from_db()
    assert Answer.objects.filter(hit=hit).count() == 3
    assert (third.counts, third.excluded_because) == (False, "beyond the answers its HIT asked for")
    assert UnitLabel.objects.get(unit=hit.unit).answers == 2
    # A reviewer rejects one that counted: the kept one takes its place.
    review.answer_reject(answer_id=first.pk, reviewer=ALICE, feedback="Not the highlighted regions.")
    assert set(Answer.objects.filter(counts=True).values_list("pk", flat=True)) == {second.pk, third.pk}
    assert UnitLabel.objects.get(unit=hit.unit).answers == 2


@pytest.mark.django_db
def test_an_old_tab_after_returning_and_accepting_again_stores_once(mturk_hit, client) -> None:
    hit = mturk_hit
    old_tab = open_page(client, hit, "FIRST", "W1")
    open_page(client, hit, "SECOND", "W1")  # returned, then accepted again: a new assignment
    first = submit(client, hit, old_tab)
    again = submit(client, hit, old_tab)
    assert first.status_code == again.status_code == 200
    assert 'name="assignmentId" value="SECOND"' in first.content.decode(), "handed to MTurk as the live assignment"
    assert "We had this answer already" in again.content.decode()
    answer = Answer.objects.get()
    assert answer.assignment.external_id == "SECOND"
    assert not Assignment.objects.filter(external_id="FIRST").exists(), "the returned one left no row"
    # A later page open in the worker's name from another address is not their browser: the answer
    # stays on the assignment its page named.
    third = open_page(client, hit, "THIRD", "W2")
    open_page(Client(REMOTE_ADDR="198.51.100.7"), hit, "MADEUP", "W2")
    assert 'name="assignmentId" value="THIRD"' in submit(client, hit, third).content.decode()
    assert not Assignment.objects.filter(external_id="MADEUP").exists()


@pytest.mark.django_db
def test_a_blocked_worker_and_a_finished_campaign_are_stored_and_flagged(world_dir) -> None:
    concept_network(world_dir, concepts=("car", "house"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--answers-per-unit", "2")
    call_command("publish", "c", "--backend", "local")
    browsers = {}
    for name in ("blocked", "late"):
        browsers[name] = Client()
        browsers[name].post(lab_link_create(label=name)[1])
        browsers[name].post("/annotate/next/")
    open_of = {name: Assignment.objects.get(worker__external_id=name) for name in browsers}
    Worker.objects.filter(external_id="blocked").update(blocked=True)
    outcome = {}
    for name in ("blocked", "late"):
        if name == "late":
            Campaign.objects.update(status="finished")
        assignment = open_of[name]
        gold = [str(p) for p in assignment.hit.slots.filter(gold=True).values_list("position", flat=True)]
        response = browsers[name].post(
            f"/annotate/a/{assignment.external_id}/",
            {"description": "car", "category": "object", "mismatch": gold},
            follow=True,
        )
        outcome[name] = response.content.decode()
    assert "answers from your account no longer count" in outcome["blocked"]
    assert "The campaign finished before your answer arrived" in outcome["late"]
    stored = {a.worker.external_id: a for a in Answer.objects.select_related("worker")}
    assert (stored["blocked"].held, stored["blocked"].counts) == ("blocked", False)
    assert (stored["late"].held, stored["late"].counts) == ("late", False)
    assert stored["late"].excluded_because == "sent after its campaign finished"


@pytest.mark.django_db
def test_mturk_answers_are_taken_until_the_assignments_own_deadline(mturk_hit, client) -> None:
    hit = mturk_hit
    on_time = open_page(client, hit, "ONTIME", "W1")
    accepted = timezone.now() - timedelta(minutes=hit.campaign.assignment_minutes + 1)
    with mock.patch("django.utils.timezone.now", return_value=accepted):  # its deadline passed a minute ago
        too_late = open_page(client, hit, "LATE", "W2")
    Campaign.objects.update(status="finished")
    assert open_page(client, hit, "ONTIME", "W1").status_code == 200, "reopened before its deadline"
    assert open_page(client, hit, "LATE", "W2").status_code == 410
    assert submit(client, hit, on_time).status_code == 200
    late = submit(client, hit, too_late).content.decode()
    assert "The campaign finished before your answer arrived" in late
    held = dict(Answer.objects.values_list("assignment__external_id", "held"))
    assert held == {"ONTIME": "", "LATE": "late"}
    assert open_page(client, hit, "NEWCOMER", "W3").status_code == 410


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "sqlite", reason="needs a server database for concurrent writers")
def test_concurrent_submits_of_one_answer_store_it_once_and_hand_out_one_next_hit(world_dir) -> None:
    concept_network(world_dir, concepts=("car", "house", "tree"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--answers-per-unit", "2")
    call_command("publish", "c", "--backend", "local")
    browser = Client()
    browser.post(lab_link_create(label="clicker")[1])
    url = browser.post("/annotate/next/").url
    assignment = Assignment.objects.get(external_id=url.rstrip("/").rsplit("/", 1)[1])
    gold = [str(p) for p in assignment.hit.slots.filter(gold=True).values_list("position", flat=True)]
    cookie = browser.cookies["sessionid"].value
    statuses, start = [], threading.Barrier(15)

    def click() -> None:
        tab = Client()
        tab.cookies["sessionid"] = cookie
        start.wait()
        statuses.append(tab.post(url, {"description": "car", "category": "object", "mismatch": gold}).status_code)
        connection.close()

    threads = [threading.Thread(target=click) for _ in range(15)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [302] * 15
    assert Answer.objects.count() == 1
    assert Assignment.objects.filter(worker__external_id="clicker", status="open").count() == 1


@pytest.mark.django_db
def test_exports_list_the_answers_that_count_and_mark_the_rest(mturk_hit, client, tmp_path) -> None:
    hit = mturk_hit
    for n in range(3):  # made-up assignment ids: stored, never counted
        submit(client, hit, open_page(client, hit, f"FORGED{n}", f"NOBODY{n}"), description="forged")
    real = answer_hit(hit, "W-real", "car", "object")
    Answer.objects.filter(pk=real.pk).update(confirmation="confirmed")
    from annotator.services.answers import answers_settle

    answers_settle([real.pk])
    call_command("aggregate")
    out = tmp_path / "units.json"
    call_command("export", "--network", "world", "--output", str(out))
    unit = next(r for r in json.loads(out.read_text()) if r["unit"] == hit.unit.index)
    assert [a["description"] for a in unit["answers"]] == ["car"] and unit["answers"][0]["counts"] is True
    assert unit["answers_counted"] == 1
    call_command("export", "--network", "world", "--all-answers", "--output", str(out))
    unit = next(r for r in json.loads(out.read_text()) if r["unit"] == hit.unit.index)
    forged = [a for a in unit["answers"] if a["description"] == "forged"]
    assert len(forged) == 3 and all(not a["counts"] and a["confirmation"] == "unconfirmed" for a in forged)
    assert all(a["not_counted_because"] == "unconfirmed (sync has not seen it on Mechanical Turk yet)" for a in forged)
    tally = tmp_path / "tally.csv"
    call_command("export", "--network", "world", "--format", "tally", "--output", str(tally))
    assert any(line.split(",")[6] == "1" for line in tally.read_text().splitlines()[1:]), "the tally counts 1"
