"""The Prolific client against the local service: Prolific's refusals in its words, throttling retried
with backoff, every page of a list, and one request at a time."""

from __future__ import annotations

import threading
import urllib.request
from decimal import Decimal

import pytest

from prolific.client import ProlificClient, ProlificError


def study_body(**changes) -> dict:
    body = {
        "name": "n",
        "internal_name": "i",
        "description": "d",
        "external_study_url": "https://example.org/p/1/?PROLIFIC_PID={{%PROLIFIC_PID%}}",
        "prolific_id_option": "url_parameters",
        "total_available_places": 3,
        "estimated_completion_time": 10,
        "reward": 150,
        "completion_codes": [{"code": "ABC", "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]}],
    }
    return {**body, **changes}


def test_refusals_name_the_call_and_prolifics_reason(prolific_service) -> None:
    client = ProlificClient(prolific_service.token, prolific_service.url)
    with pytest.raises(ProlificError, match="Prolific refused create study: Missing required fields: reward"):
        client.create_study({k: v for k, v in study_body().items() if k != "reward"})
    with pytest.raises(ProlificError, match="Prolific refused get study: No such study"):
        client.study("0" * 24)
    wrong = ProlificClient("not-the-token", prolific_service.url)
    with pytest.raises(ProlificError, match="Invalid token"):
        wrong.studies()
    with pytest.raises(ProlificError, match="PROLIFIC_TOKEN is not set"):
        ProlificClient("", prolific_service.url)


def test_places_only_grow_after_publishing(prolific_service) -> None:
    client = ProlificClient(prolific_service.token, prolific_service.url)
    study = client.create_study(study_body())
    client.set_places(study["id"], 2)  # a draft may shrink
    client.publish_study(study["id"])
    client.set_places(study["id"], 5)
    with pytest.raises(ProlificError, match="Places can only be increased after publishing"):
        client.set_places(study["id"], 4)
    assert client.study(study["id"])["total_available_places"] == 5


def test_throttling_is_retried_with_backoff(prolific_service) -> None:
    waits = []
    client = ProlificClient(prolific_service.token, prolific_service.url, sleep=waits.append)
    prolific_service.throttle(3)
    assert client.studies() == []
    assert waits == [0.0, 0.0, 0.0]  # Prolific's Retry-After (0 here) is honoured
    prolific_service.throttle(10)
    with pytest.raises(ProlificError, match="throttled"):
        client.studies()


def test_every_page_is_read(prolific_service) -> None:
    client = ProlificClient(prolific_service.token, prolific_service.url)
    made = {client.create_study(study_body(internal_name=f"s{i}"))["id"] for i in range(5)}
    assert {s["id"] for s in client.studies()} == made  # page size 2: three pages


def test_one_request_at_a_time(prolific_service) -> None:
    """Prolific refuses concurrent requests; the client never sends them, even from many threads."""
    client = ProlificClient(prolific_service.token, prolific_service.url)
    errors = []

    def call() -> None:
        try:
            client.studies()
        except ProlificError as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and "concurrent" not in prolific_service.refusals
    # Without the client's lock the service refuses overlapping requests, as Prolific does. Each is held
    # a quarter second and all start together, so they overlap however loaded the machine is.
    prolific_service.hold = 0.25
    statuses, start = [], threading.Barrier(8)

    def raw() -> None:
        start.wait()
        request = urllib.request.Request(
            f"{prolific_service.url}/api/v1/studies/", headers={"Authorization": f"Token {prolific_service.token}"}
        )
        try:
            statuses.append(urllib.request.urlopen(request).status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)

    threads = [threading.Thread(target=raw) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 429 in statuses


def test_rejections_follow_prolifics_rules_before_the_call(prolific_service) -> None:
    client = ProlificClient(prolific_service.token, prolific_service.url)
    calls = len(prolific_service.calls)
    with pytest.raises(ProlificError, match="fewer than 100 characters"):
        client.reject("0" * 24, "too short", "LOW_EFFORT")
    with pytest.raises(ProlificError, match="Unknown rejection category"):
        client.reject("0" * 24, "x" * 120, "BAD_VIBES")
    assert len(prolific_service.calls) == calls, "nothing was sent"
    assert client.cost(150, 4) == Decimal("8")  # Prolific's own quote, fee included (cents -> dollars)
