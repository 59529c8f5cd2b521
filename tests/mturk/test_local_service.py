"""The client over real HTTP against the local MTurk-compatible service: request signing, the JSON
protocol, MTurk's ThrottlingException retried with backoff, and MTurk's own refusals."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from mturk import client as mturk
from tests.mturk_service import LocalTurk


@pytest.fixture
def turk(monkeypatch):
    service = LocalTurk(balance="12.34")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
    yield service
    service.close()


@pytest.mark.slow
def test_throttled_calls_are_retried_with_backoff(turk) -> None:
    turk.throttle = 3
    started = time.monotonic()
    assert mturk.account_balance(mturk.connect("sandbox", turk.url)) == Decimal("12.34")
    assert turk.calls == ["throttled", "throttled", "throttled", "GetAccountBalance"]
    assert time.monotonic() - started > 0.05  # it waited between tries


def test_refusals_are_clear_and_lists_are_paged(turk) -> None:
    client = mturk.connect("sandbox", turk.url)
    with pytest.raises(mturk.MTurkError, match="refused ApproveAssignment: Assignment NOPE does not exist"):
        mturk.approve_assignment(client, "NOPE")
    type_id = mturk.create_hit_type(
        client,
        title="t",
        description="d",
        keywords="k",
        reward=Decimal("0.05"),
        assignment_seconds=600,
        auto_approval_seconds=3600,
        qualifications=[],
    )
    ids = [
        mturk.create_hit(
            client,
            hit_type_id=type_id,
            question="<ExternalURL>https://x/</ExternalURL>",
            max_assignments=3,
            lifetime_seconds=60,
            annotation=f"u{i}",
            token=f"t{i}",
        )[0]
        for i in range(5)
    ]
    assert sorted(h["HITId"] for h in mturk.pages(client, "list_hits", "HITs", MaxResults=100)) == sorted(ids)
    assert turk.calls.count("ListHITs") == 3  # pages of two
    again = mturk.create_hit(
        client,
        hit_type_id=type_id,
        question="<ExternalURL>https://x/</ExternalURL>",
        max_assignments=3,
        lifetime_seconds=60,
        annotation="u2",
        token="t2",
    )
    assert again == (ids[2], False)
    assert mturk.get_hit(client, "3NOSUCHHIT") is None
