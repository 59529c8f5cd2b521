"""A database that fails in the middle of a submission: the worker gets a clear 503 page with
Retry-After, nothing is stored, and submitting again stores the answer once."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client

from annotator.models import Answer
from annotator.views import hit_form
from tests.factories import concept_network, put_on_mturk

pytestmark = pytest.mark.django_db


def test_a_database_outage_during_a_submission_loses_nothing_and_stores_once(world_dir, monkeypatch) -> None:
    concept_network(world_dir, concepts=("car", "house"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--images-per-hit", "20")
    hit = put_on_mturk("c")[0]
    client = Client()
    page = client.get(f"/hit/{hit.key}/", {"assignmentId": "A1", "workerId": "W1", "hitId": "H1"}).content.decode()
    data = {
        "token": re.search(r'name="token" value="([^"]+)"', page).group(1),
        "description": "car",
        "category": "object",
        "mismatch": [str(p) for p in hit.slots.filter(gold=True).values_list("position", flat=True)],
    }
    real = hit_form.answer_submit

    def down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(hit_form, "answer_submit", down)
    failed = client.post(f"/hit/{hit.key}/", data)
    assert failed.status_code == 503 and failed["Retry-After"] == "5"
    assert "briefly unavailable" in failed.content.decode() and "submit again" in failed.content.decode()
    assert not Answer.objects.exists()
    monkeypatch.setattr(hit_form, "answer_submit", real)
    assert client.post(f"/hit/{hit.key}/", data).status_code == 200
    again = client.post(f"/hit/{hit.key}/", data)
    assert again.status_code == 200 and "We had this answer already" in again.content.decode()
    assert Answer.objects.count() == 1
