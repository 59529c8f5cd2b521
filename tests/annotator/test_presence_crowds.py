"""The presence task on the two paid crowds, by their own confirmation rules: on Mechanical Turk an
answer counts once sync finds MTurk's copy of it (and a copy that differs is reported); on Prolific once
Prolific lists the participant's submission. Either way the units' scores follow the counted answers."""

from __future__ import annotations

import re
import secrets

import pytest
from django.core.management import call_command
from django.test import Client

from annotator.crowds.mturk.sync import campaign_sync
from annotator.models import Answer, Campaign, Hit, UnitEvaluation
from annotator.task_kinds import task_for
from tests.annotator.test_answer_trust import listed
from tests.annotator.test_prolific import EXTERNAL, take
from tests.factories import presence_world, put_on_mturk

pytestmark = pytest.mark.django_db(transaction=True)


def presence_campaign(world_dir, *extra: str) -> Campaign:
    presence_world(world_dir)
    call_command("create_campaign", "p", "--task", "presence", "--from", "c", "--images", "20", *extra)
    return Campaign.objects.get(name="p")


def yes_no(hit: Hit, says: bool = True) -> dict[str, str]:
    return {f"image-{p}": "yes" if says else "no" for p in hit.slots.values_list("position", flat=True)}


def test_on_mturk_an_answer_counts_once_sync_finds_mturks_copy(world_dir, stubbed_mturk) -> None:
    campaign = presence_campaign(world_dir)
    hits = put_on_mturk("p")
    hit = hits[0]
    client = Client()
    params = {"assignmentId": "A1", "workerId": "W1", "hitId": hit.remote_id, "turkSubmitTo": "https://www.mturk.com"}
    page = client.get(f"/hit/{hit.key}/", params).content.decode()
    assert f"Is there a <q>{hit.label}</q> in each image?" in page and page.count('value="yes"') == hit.slots.count()
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    handed = client.post(f"/hit/{hit.key}/", {"token": token, "turkSubmitTo": "https://www.mturk.com", **yes_no(hit)})
    body = handed.content.decode()
    assert handed.status_code == 200 and 'action="https://www.mturk.com/mturk/externalSubmit"' in body
    stored = Answer.objects.get(hit=hit)
    assert (
        stored.unit_id is None and len(stored.ratings) == hit.slots.count() and set(stored.ratings.values()) == {True}
    )
    assert f'name="ratings" value="{task_for(campaign).platform_fields(stored)["ratings"]}"' in body
    assert not stored.counts and not UnitEvaluation.objects.filter(ratings__gt=0).exists()

    listed(stubbed_mturk, hit, [stored])
    report = campaign_sync(campaign=campaign, client=stubbed_mturk.client)
    assert report.confirmed == 1 and not report.differing, report.lines()
    stored.refresh_from_db()
    assert stored.counts
    units = task_for(campaign).units_of(hit)
    assert units and set(
        UnitEvaluation.objects.filter(campaign=campaign, ratings__gt=0).values_list("unit_id", flat=True)
    ) == set(units)


def test_on_prolific_an_answer_counts_once_prolific_lists_the_submission(world_dir, prolific_service) -> None:
    campaign = presence_campaign(world_dir, "--answers-per-unit", "1")
    call_command(
        "publish", "p", "--backend", "prolific", "--external-url", EXTERNAL, "--hits-per-participant", "2", "--yes"
    )
    campaign.refresh_from_db()
    client = Client()
    url = take(client, prolific_service, campaign, secrets.token_hex(12))
    for _ in range(2):
        page = client.get(url)
        assert page.status_code == 200 and "Is there a" in page.content.decode()
        hit = page.context["page"].hit
        response = client.post(url, {"assignment": page.context["page"].hidden["assignment"], **yes_no(hit, False)})
        assert response.status_code == 302, response.content[:400]
        following = client.get(response["Location"])
        url = following.context["back"] if "back" in (following.context or {}) else response["Location"]
    assert url.endswith(f"cc={campaign.crowd_state['completion_code']}"), "the last page's way back to Prolific"
    answers = Answer.objects.filter(hit__campaign=campaign)
    assert answers.count() == 2 and not any(a.counts for a in answers)
    call_command("sync", "p")
    assert all(a.counts for a in answers.all())
    rated = UnitEvaluation.objects.filter(campaign=campaign, ratings__gt=0)
    assert rated.exists() and all(e.images > 0 for e in rated)
