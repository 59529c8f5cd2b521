"""Prolific end to end in real Chromium, against the local Prolific: a participant follows the study link
(Prolific adds PROLIFIC_PID, STUDY_ID and SESSION_ID), answers two HITs and lands on Prolific's
completion page with the code; a second, careless participant finishes too. A reviewer then syncs,
reviews by rule (one approval, one rejection with its message) and pays a bulk bonus from the
dashboard; re-running publish and sync changes nothing."""

from __future__ import annotations

import secrets

import pytest
from django.core.management import call_command
from django.test import Client

from annotator.models import Answer, Campaign, Hit
from tests.annotator.test_prolific import LONG_FEEDBACK, finish
from tests.browser.conftest import sign_in_as_reviewer
from tests.browser.test_hit_form import screenshot
from tests.factories import concept_network

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def answer_in_browser(page) -> None:
    page.wait_for_selector("#hit-form")
    page.locator("#description").fill("car")
    for position in page.evaluate("window.__gold"):
        page.locator(f'label.tile[data-position="{position}"]').click()
    page.get_by_text("Object", exact=True).click()
    page.locator("#submit").click()
    page.wait_for_load_state()


def test_a_participant_from_prolific_then_review_and_pay(
    page, live_server, world_dir, prolific_service, tmp_path
) -> None:
    concept_network(world_dir, concepts=("car", "house", "tree", "boat"))
    call_command(
        "create_campaign",
        "p",
        "--network",
        "world",
        "--layers",
        "conv3",
        "--images-per-hit",
        "12",
        "--answers-per-unit",
        "2",
    )
    publish = (
        "publish",
        "p",
        "--backend",
        "prolific",
        "--external-url",
        live_server.url,
        "--hits-per-participant",
        "2",
        "--yes",
    )
    call_command(*publish)
    campaign = Campaign.objects.get(name="p")
    participant = secrets.token_hex(12)

    page.goto(prolific_service.study_link(campaign.crowd_state["study_id"], participant))
    first = page.locator("#progress").inner_text()
    assert "/prolific/" in page.url and "Set 1 of at most 2" in first and "about 4 minutes in all" in first
    for number in (1, 2):
        if number == 2:
            assert "Saved: set 1 of 2." in page.locator("#progress").inner_text()
        key = page.evaluate("document.querySelector('label.tile img').src.split('/hit/')[1].split('/')[0]")
        gold = list(Hit.objects.get(key=key).slots.filter(gold=True).values_list("position", flat=True))
        page.evaluate(f"window.__gold = {gold}")
        answer_in_browser(page)
        assert Answer.objects.filter(worker__external_id=participant).count() == number
    page.wait_for_selector("#completion-code")  # the code on our last page, then back to Prolific by itself
    assert page.locator("#completion-code").inner_text() == campaign.crowd_state["completion_code"]
    page.wait_for_selector("#prolific-complete")
    assert "awaits review" in page.content()
    assert {s["participant_id"]: s["status"] for s in prolific_service.submissions.values()} == {
        participant: "AWAITING REVIEW"
    }

    careless = secrets.token_hex(12)
    finish(Client(), prolific_service, campaign, careless, careful=False)

    # The reviewer, in the dashboard.
    sign_in_as_reviewer(page, live_server)
    page.goto(f"{live_server.url}/dashboard/campaign/{campaign.pk}/")
    page.click("#sync")
    assert "2 submissions listed" in page.content()
    assert Answer.objects.filter(worker__external_id=participant, counts=True).count() == 2
    page.check("input[name=rules][value=gold-failed]")
    page.check("input[name=approve_passing]")
    page.fill("#rule-feedback", LONG_FEEDBACK)
    page.click("#rule-apply")
    assert "1 participants' submissions were rejected and 1 approved" in page.content()
    statuses = {s["participant_id"]: s["status"] for s in prolific_service.submissions.values()}
    assert statuses == {participant: "APPROVED", careless: "REJECTED"}
    page.on("dialog", lambda dialog: dialog.accept())
    page.check(f"#bulk-bonus input[value='{participant}']")
    page.fill("#bulk-bonus input[name=amount]", "0.40")
    page.fill("#bulk-bonus input[name=reason]", "Careful marking")
    page.click("#bulk-bonus button")
    assert "Bonuses paid in one bulk payment to 1 participants" in page.content()
    (bulk,) = prolific_service.bulk.values()
    assert bulk["paid"] and list(bulk["amounts"]) == [participant]
    assert "approved submission" in page.locator("#money").inner_text()
    screenshot(page, "dashboard-prolific.png", tmp_path, full_page=True)

    # Re-running publish and sync changes nothing on Prolific or here.
    writes = [c for c in prolific_service.calls if not c.startswith("GET")]
    before = list(Answer.objects.order_by("id").values_list("confirmation", "held", "counts", "review"))
    call_command(*publish)
    call_command("sync", "p")
    after_writes = [c for c in prolific_service.calls if not c.startswith("GET")]
    assert [c for c in after_writes[len(writes) :] if "study-cost-calculator" not in c] == []
    assert list(Answer.objects.order_by("id").values_list("confirmation", "held", "counts", "review")) == before
    assert len(prolific_service.studies) == 1
