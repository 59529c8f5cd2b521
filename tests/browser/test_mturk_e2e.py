"""A whole Mechanical Turk campaign against a local MTurk-compatible service over HTTP, so that boto3's
real request signing, JSON protocol and retries run: publish (through throttling), a worker opens
the ExternalQuestion in Chromium on the service's worker site and submits, sync, approve, MTurk's
auto-approval, and re-runs of publish and sync that create and change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from annotator.models import Answer, Campaign, Hit
from tests.factories import concept_network
from tests.mturk_service import LocalTurk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def turk(monkeypatch, settings):
    service = LocalTurk()
    settings.MTURK_ENDPOINT_URL = service.url
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.MTURK_EXTRA_SUBMIT_ORIGINS = [service.url]
    settings.MTURK_FRAME_ANCESTORS = [*settings.MTURK_FRAME_ANCESTORS, service.url]
    yield service
    service.close()


def answer_in_frame(page, hit: Hit, url: str, description: str) -> None:
    """What a worker does on MTurk's site: the HIT page in its frame, answered and submitted."""
    page.goto(url)
    frame = page.frame_locator("#task")
    frame.locator("#description").fill(description)
    for position in hit.slots.filter(gold=True).values_list("position", flat=True):
        frame.locator(f'label.tile[data-position="{position}"]').click()
    frame.get_by_text("Object", exact=True).click()
    frame.locator("#submit").click()
    frame.locator("#turk-done").wait_for()


def test_publish_answer_sync_approve_on_a_local_mturk(page, live_server, world_dir, turk, capsys) -> None:
    concept_network(world_dir, concepts=("car", "house"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--images-per-hit", "20")
    turk.throttle = 2  # MTurk says "Rate exceeded" twice: botocore backs off and tries again
    call_command("publish", "c", "--external-url", live_server.url, "--auto-approval-hours", "1")
    out = capsys.readouterr().out
    assert "2 HITs created" in out and turk.calls[:3] == ["throttled", "throttled", "GetAccountBalance"]
    published = Campaign.objects.get(name="c")
    assert len(turk.hits) == 2 and (published.platform, published.environment) == ("mturk", "sandbox")
    car = Hit.objects.get(campaign__name="c", unit__index=0)
    assert turk.external_url(car.remote_id) == f"{live_server.url}/hit/{car.key}/"

    answer_in_frame(page, car, turk.accept(car.remote_id, "WORKER1"), "car")
    stored = Answer.objects.get()
    assert (stored.source, stored.worker.external_id, stored.description, stored.gold_passed) == (
        "mturk",
        "WORKER1",
        "car",
        True,
    )
    [assignment] = turk.assignments.values()
    assert assignment["AssignmentStatus"] == "Submitted" and "<FreeText>car</FreeText>" in assignment["Answer"]

    assert not stored.counts, "stored at once, but counted only once MTurk lists the assignment"
    call_command("sync", "c")
    out = capsys.readouterr().out
    assert "1 assignments on MTurk, 1 matched ours; no status changed; 1 confirmed; 0 adopted." in out
    assert "only" not in out and "differs" not in out
    assert Answer.objects.get().counts
    call_command("review", "c", "--approve", assignment["AssignmentId"])
    assert assignment["AssignmentStatus"] == "Approved"
    assert Answer.objects.get().review == "approved"

    # A second worker; MTurk approves by itself after the delay, and sync shows it.
    house = Hit.objects.get(campaign__name="c", unit__index=1)
    answer_in_frame(page, house, turk.accept(house.remote_id, "WORKER2"), "house")
    assert turk.auto_approve(datetime.now(UTC) + timedelta(hours=2)) == 1
    call_command("sync", "c")
    assert "1 now approved; 1 confirmed" in capsys.readouterr().out
    assert set(Answer.objects.values_list("review", flat=True)) == {"approved"}

    # Re-running publish and sync creates and changes nothing.
    calls = len(turk.calls)
    call_command("publish", "c", "--external-url", live_server.url, "--auto-approval-hours", "1")
    call_command("sync", "c")
    out = capsys.readouterr().out
    assert "0 HITs created" in out and "no status changed" in out
    assert len(turk.hits) == 2 and Answer.objects.count() == 2
    assert "CreateHITWithHITType" not in turk.calls[calls:]
