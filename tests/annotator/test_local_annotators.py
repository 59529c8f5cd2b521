"""Local annotators: accounts and lab links, "next HIT" until nothing is left, and their own pages only."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from annotator.models import Answer, Assignment, Campaign, Worker
from annotator.services.workers import lab_link_create
from tests.factories import concept_network

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(world_dir) -> Campaign:
    concept_network(world_dir, concepts=("car", "house"), per_unit=20)
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
        "2",
    )
    call_command("publish", "c", "--backend", "local")
    return Campaign.objects.get(name="c")


def answer_current(client: Client, response) -> object:
    """Follow "next HIT" to the assignment page and answer it with every gold image marked."""
    assignment = Assignment.objects.get(external_id=response.url.rstrip("/").rsplit("/", 1)[1])
    gold = [str(p) for p in assignment.hit.slots.filter(gold=True).values_list("position", flat=True)]
    page = client.get(response.url)
    assert page.status_code == 200 and page["X-Frame-Options"] == "DENY"
    return client.post(response.url, {"description": "car", "category": "object", "mismatch": gold})


def test_anonymous_visitors_are_sent_to_login(campaign, client) -> None:
    response = client.get("/annotate/")
    assert response.status_code == 302 and response.url == "/accounts/login/?next=/annotate/"
    assert client.post("/annotate/next/").status_code == 302
    assert client.get("/").url == "/annotate/"


def test_an_account_takes_next_hit_until_nothing_is_left(campaign, client) -> None:
    user = get_user_model().objects.create_user("ann", password="pw-for-tests")  # noqa: S106
    assert client.post("/accounts/login/", {"username": "ann", "password": "pw-for-tests"}).status_code == 302
    home = client.get("/annotate/").content.decode()
    assert 'id="done-count">0<' in home and 'id="available-count">2<' in home
    response = client.post("/annotate/next/")
    first = answer_current(client, response)
    assert first.status_code == 302 and first.url.startswith("/annotate/a/"), "saved, then straight to the next HIT"
    last = answer_current(client, first)
    assert last.url == "/annotate/"
    home = client.get("/annotate/").content.decode()
    assert 'id="done-count">2<' in home and 'id="nothing-left"' in home
    worker = Worker.objects.get(user=user)
    assert Answer.objects.filter(worker=worker, source="local").count() == 2
    assert client.post("/annotate/next/").url == "/annotate/"


def test_lab_links_identify_workers_without_accounts(campaign, client, capsys) -> None:
    call_command("annotators", "link", "seat-1", "seat-2")
    links = dict(line.split("\t") for line in capsys.readouterr().out.strip().splitlines())
    path = links["seat-1"].replace("http://127.0.0.1:8000", "")
    assert "Start annotating as seat-1" in client.get(path).content.decode()
    assert client.get("/annotate/").status_code == 302, "opening the link alone signs nobody in"
    assert client.post(path).url == "/annotate/"
    assert client.session.get_expire_at_browser_close(), "the session ends when the browser closes"
    assert "Hello, seat-1" in client.get("/annotate/").content.decode()
    answer_current(client, client.post("/annotate/next/"))
    assert Answer.objects.get().worker.external_id == "seat-1"
    bad = Client().get(path[:-3] + "xyz/")
    assert bad.status_code == 400 and "not valid" in bad.content.decode()


def test_annotators_see_only_their_own_assignments_and_need_csrf(campaign) -> None:
    mine, theirs = Client(enforce_csrf_checks=True), Client()
    for client, label in ((mine, "a"), (theirs, "b")):
        path = lab_link_create(label=label)[1]
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(path).content.decode()).group(1)
        client.post(path, {"csrfmiddlewaretoken": csrf})
    theirs_url = theirs.post("/annotate/next/").url
    assert mine.get(theirs_url).status_code == 404
    page = mine.get("/annotate/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert mine.post("/annotate/next/").status_code == 403
    url = mine.post("/annotate/next/", {"csrfmiddlewaretoken": csrf}).url
    assert mine.post(url, {"description": "car", "category": "object"}).status_code == 403
    assert not Answer.objects.exists()


def test_invited_annotators_set_their_password(campaign, capsys) -> None:
    call_command("annotators", "invite", "newbie", "--email", "n@example.org")
    link = capsys.readouterr().out.strip().rsplit(" ", 1)[1].replace("http://127.0.0.1:8000", "")
    client = Client()
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and b"new_password1" in form_page.content
    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "a-Long-pass-42", "new_password2": "a-Long-pass-42"}
    )
    assert done.status_code == 302
    signed_in = client.post("/accounts/login/", {"username": "newbie", "password": "a-Long-pass-42"})
    assert signed_in.status_code == 302, "the new password signs in"
    assert "Hello, newbie" in client.get("/annotate/").content.decode()


def test_lab_link_sign_in_needs_our_own_pages_post(campaign) -> None:
    """Another site cannot sign a browser in: a GET signs nobody in and a POST needs our CSRF token."""
    _, path = lab_link_create(label="seat-9")
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(path).content.decode()
    assert browser.post(path).status_code == 403 and browser.get("/annotate/").status_code == 302
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert browser.post(path, {"csrfmiddlewaretoken": csrf}).url == "/annotate/"
    assert browser.get("/annotate/").status_code == 200


def test_lab_links_expire_and_can_be_revoked(campaign, capsys, monkeypatch) -> None:
    import time

    _, old_path = lab_link_create(label="seat-3")
    signed_in = Client()
    signed_in.post(old_path)
    assert signed_in.get("/annotate/").status_code == 200
    call_command("annotators", "revoke", "seat-3")
    assert "revoked" in capsys.readouterr().out
    assert signed_in.get("/annotate/").status_code == 302, "a revoked link's browser is signed out"
    refused = Client().post(old_path)
    assert refused.status_code == 400 and "revoked" in refused.content.decode()
    _, fresh = lab_link_create(label="seat-3")
    assert Client().post(fresh).url == "/annotate/", "a new link works after a revocation"
    _, short = lab_link_create(label="seat-4", valid_days=0.5)
    later = Client()
    later.post(short)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 86400)
    assert later.get("/annotate/").status_code == 302, "an expired link's session ends"
    expired = Client().post(short)
    assert expired.status_code == 400 and "expired" in expired.content.decode()
