"""The HIT page over HTTP (Django's test client): MTurk mode, local annotators, every validation rule."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client

from annotator.models import Answer, Assignment, Campaign, Hit
from tests.factories import concept_network, put_on_mturk

pytestmark = pytest.mark.django_db
SANDBOX_SUBMIT = "https://workersandbox.mturk.com/mturk/externalSubmit"


@pytest.fixture
def hit(world_dir) -> Hit:
    concept_network(world_dir, concepts=("car", "house", "tree", "boat"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3")
    return put_on_mturk("c")[0]


def gold(hit: Hit) -> list[int]:
    return list(hit.slots.filter(gold=True).values_list("position", flat=True))


def own(hit: Hit) -> list[int]:
    return list(hit.slots.filter(gold=False).values_list("position", flat=True))


def open_hit(client: Client, hit: Hit, assignment: str = "A1", worker: str = "W1", **extra) -> str:
    params = {
        "assignmentId": assignment,
        "hitId": "H1",
        "workerId": worker,
        "turkSubmitTo": "https://workersandbox.mturk.com",
        **extra,
    }
    response = client.get(f"/hit/{hit.key}/", params)
    assert response.status_code == 200
    return response.content.decode()


def token(page: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def post(client: Client, hit: Hit, page: str, **fields):
    data = {
        "token": token(page),
        "turkSubmitTo": "https://workersandbox.mturk.com",
        "description": "car",
        "category": "object",
        "mismatch": [str(p) for p in gold(hit)],
        **fields,
    }
    return client.post(f"/hit/{hit.key}/", data, HTTP_USER_AGENT="pytest-agent")


def test_preview_shows_the_whole_task_locked(hit, client) -> None:
    for params in ({"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "H1"}, {}):
        page = client.get(f"/hit/{hit.key}/", params).content.decode()
        assert "Preview: accept the HIT to answer" in page
        assert page.count('type="checkbox" name="mismatch"') == 60
        assert "<fieldset disabled>" in page and 'name="token"' not in page
    assert not Assignment.objects.exists()


def test_accept_answer_and_hand_over_to_mturk(hit, client) -> None:
    page = open_hit(client, hit)
    assert "Preview" not in page and "<fieldset >" in page
    assert not Assignment.objects.exists(), "no row for MTurk's ids until an answer comes"
    marked = gold(hit) + own(hit)[:6]
    response = post(client, hit, page, mismatch=[str(p) for p in marked], description="  Car  ")
    assignment = Assignment.objects.get(external_id="A1")
    assert assignment.worker.external_id == "W1" and assignment.worker.kind == "mturk"
    body = response.content.decode()
    assert response.status_code == 200
    assert f'action="{SANDBOX_SUBMIT}"' in body
    assert 'name="assignmentId" value="A1"' in body and 'name="description" value="car"' in body.lower()
    stored = Answer.objects.get()
    assert (stored.worker.external_id, stored.hit, stored.assignment, stored.unit_id) == (
        "W1",
        hit,
        assignment,
        hit.unit_id,
    )
    assert (stored.description, stored.category, stored.source) == ("Car", "object", "mturk")
    assert stored.marked == sorted(marked)
    assert stored.precision == pytest.approx(51 / 57)
    assert (stored.gold_total, stored.gold_marked, stored.gold_passed) == (3, 3, True)
    assert stored.opened_at == assignment.opened_at and stored.submitted_at >= stored.opened_at
    assert stored.user_agent == "pytest-agent"


def test_a_repeated_submission_is_stored_once_and_answered_politely(hit, client) -> None:
    page = open_hit(client, hit)
    first = post(client, hit, page)
    again = post(client, hit, page, description="something else")
    assert first.status_code == again.status_code == 200
    assert "We had this answer already" in again.content.decode()
    reopened = open_hit(client, hit)  # the worker reloads the page
    assert "We had this answer already" in reopened
    assert Answer.objects.get().description == "car"


@pytest.mark.parametrize(
    ("turk_submit_to", "expected"),
    [
        ("https://www.mturk.com", "https://www.mturk.com/mturk/externalSubmit"),
        ("https://workersandbox.mturk.com/", SANDBOX_SUBMIT),
        ("https://evil.example.com", SANDBOX_SUBMIT),
        ("https://www.mturk.com.evil.example", SANDBOX_SUBMIT),
        ("javascript:alert(1)", SANDBOX_SUBMIT),
        ("", SANDBOX_SUBMIT),
    ],
)
def test_answers_go_only_to_mechanical_turk(hit, client, turk_submit_to, expected) -> None:
    page = open_hit(client, hit, turkSubmitTo=turk_submit_to)
    body = post(client, hit, page, turkSubmitTo=turk_submit_to).content.decode()
    assert re.search(r'id="mturk-submit" method="post" action="([^"]+)"', body).group(1) == expected


def test_production_fallback(hit, client) -> None:
    Campaign.objects.update(platform="mturk", environment="production")
    page = open_hit(client, hit, turkSubmitTo="")
    assert "https://www.mturk.com/mturk/externalSubmit" in post(client, hit, page, turkSubmitTo="").content.decode()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"description": ""}, "Write one or two words"),
        ({"description": "   "}, "Write one or two words"),
        ({"description": "x" * 65}, "Keep the description to 64 characters or fewer"),
        ({"description": "<script>alert(1)</script>"}, "Use words only"),
        ({"category": ""}, "Choose the category of your description"),
        ({"category": "animal"}, "Choose one of the six categories"),
        ({"mismatch": ["60"]}, "Image 60 is not part of this HIT"),
        ({"mismatch": ["abc"]}, "Image abc is not part of this HIT"),
    ],
)
def test_an_invalid_submission_reshows_the_form_with_answers_kept(hit, client, fields, error) -> None:
    page = open_hit(client, hit)
    kept = own(hit)[:2]
    data = {"description": "wheel", "category": "part", "mismatch": [str(p) for p in kept], **fields}
    response = post(client, hit, page, **data)
    body = response.content.decode()
    assert response.status_code == 400
    assert error in body and 'id="error-summary"' in body
    if "description" not in fields:
        assert 'value="wheel"' in body
    if "category" not in fields:
        assert 'value="part" checked' in body
    if "mismatch" not in fields:
        for p in kept:
            assert f'value="{p}" checked' in body
    assert 'name="token"' in body and not Answer.objects.exists()


def test_gold_left_unmarked_warns_twice_then_stores(hit, client) -> None:
    page = open_hit(client, hit)
    chosen = [str(p) for p in own(hit)[:3]]
    for attempt in (1, 2):
        response = post(client, hit, page, mismatch=chosen)
        body = response.content.decode()
        assert response.status_code == 200 and 'id="gold-warning"' in body, attempt
        assert f"Try {attempt + 1} of 3" in body and "You have marked 3 of the 60 images." in body
        assert "look unmarked" not in body and 'href="#step-mismatch"' in body
        assert ("This is your last try" in body) == (attempt == 2)
        for p in chosen:
            assert f'value="{p}" checked' in body
        assert not Answer.objects.exists()
    post(client, hit, page, mismatch=chosen + [str(gold(hit)[0])])
    stored = Answer.objects.get()
    assert (stored.gold_total, stored.gold_marked, stored.gold_warnings, stored.gold_passed) == (3, 1, 2, False)
    assert stored.precision == pytest.approx(54 / 57)


def test_bad_tokens_assignments_and_hits(hit, client) -> None:
    page = open_hit(client, hit)
    forged = post(client, hit, page, token="1:forged")
    assert forged.status_code == 400 and "token is missing or not valid" in forged.content.decode()
    other = Hit.objects.exclude(pk=hit.pk).first()
    cross = client.post(f"/hit/{other.key}/", {"token": token(page), "description": "car", "category": "object"})
    assert cross.status_code == 400 and "does not belong to this HIT" in cross.content.decode()
    missing = client.get("/hit/00000000-0000-0000-0000-000000000000/", {"assignmentId": "A9"})
    assert missing.status_code == 404 and "does not exist" in missing.content.decode()
    stolen = client.get(f"/hit/{hit.key}/", {"assignmentId": "A1", "workerId": "SOMEONEELSE", "hitId": "H1"})
    assert stolen.status_code == 400 and "belongs to another HIT or worker" in stolen.content.decode()
    no_worker = client.get(f"/hit/{hit.key}/", {"assignmentId": "A2", "hitId": "H1"})
    assert no_worker.status_code == 400 and "workerId" in no_worker.content.decode()
    Campaign.objects.update(status="finished")
    finished = client.get(f"/hit/{hit.key}/", {"assignmentId": "A3", "workerId": "W3"})
    assert finished.status_code == 410 and "finished" in finished.content.decode()
    Campaign.objects.update(status="published")
    wrong = client.get(f"/hit/{hit.key}/", {"assignmentId": "A4", "workerId": "W4", "hitId": "H2"})
    assert wrong.status_code == 400 and "another HIT" in wrong.content.decode()
    assert not Answer.objects.exists()


def test_a_local_campaign_is_not_served_as_an_mturk_hit(hit, client) -> None:
    Campaign.objects.update(platform="local", environment="")
    assert client.get(f"/hit/{hit.key}/", {"assignmentId": "A1", "workerId": "W", "hitId": "H1"}).status_code == 404


def test_framing_headers(hit, client, admin_client) -> None:
    page = client.get(f"/hit/{hit.key}/", {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"})
    assert "X-Frame-Options" not in page
    assert page["Content-Security-Policy"] == (
        "frame-ancestors https://worker.mturk.com https://www.mturk.com https://workersandbox.mturk.com"
    )
    for other in (
        client.get("/accounts/login/"),
        client.get("/annotate/"),
        admin_client.get("/admin/"),
        client.get("/hit/00000000-0000-0000-0000-000000000000/img/0"),
    ):
        assert other["X-Frame-Options"] == "DENY"
        assert other["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_images_are_served_by_position_and_cached(hit, client) -> None:
    response = client.get(f"/hit/{hit.key}/img/0")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert "immutable" in response["Cache-Control"]
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
    assert client.get(f"/hit/{hit.key}/img/60").status_code == 404


def test_the_page_works_without_cookies(hit) -> None:
    """Inside MTurk's frame third-party cookies may be blocked: nothing may depend on them."""
    client = Client(enforce_csrf_checks=True)
    page = open_hit(client, hit)
    client.cookies.clear()
    assert post(client, hit, page).status_code == 200
    assert Answer.objects.count() == 1
