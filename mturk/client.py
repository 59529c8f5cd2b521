"""The only place that speaks to Mechanical Turk. Credentials come from boto3's usual chain (AWS_*
variables, a profile); the caller may name another endpoint (a proxy, the tests' local service): the
MTurk crowd adapter passes settings.MTURK_ENDPOINT_URL.

Throttled calls are retried by botocore with exponential backoff ("standard" retry mode); any other
service error becomes an MTurkError whose message says what MTurk refused and why."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ENDPOINTS = {
    "sandbox": "https://mturk-requester-sandbox.us-east-1.amazonaws.com",
    "production": "https://mturk-requester.us-east-1.amazonaws.com",
}
RETRIES = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=10, read_timeout=30)


class MTurkError(Exception):
    """A call MTurk refused or that could not reach it; the message is meant for the requester."""


class MTurkClient(Protocol):
    """The calls of boto3's MTurk client this module makes (boto3 builds the class at run time; a test's
    fake provides these). Each takes MTurk's parameters as keywords and returns its response."""

    def get_account_balance(self, **params: Any) -> dict[str, Any]: ...
    def create_hit_type(self, **params: Any) -> dict[str, Any]: ...
    def create_hit_with_hit_type(self, **params: Any) -> dict[str, Any]: ...
    def create_additional_assignments_for_hit(self, **params: Any) -> dict[str, Any]: ...
    def create_qualification_type(self, **params: Any) -> dict[str, Any]: ...
    def get_hit(self, **params: Any) -> dict[str, Any]: ...
    def list_hits(self, **params: Any) -> dict[str, Any]: ...
    def list_assignments_for_hit(self, **params: Any) -> dict[str, Any]: ...
    def approve_assignment(self, **params: Any) -> dict[str, Any]: ...
    def reject_assignment(self, **params: Any) -> dict[str, Any]: ...
    def send_bonus(self, **params: Any) -> dict[str, Any]: ...
    def create_worker_block(self, **params: Any) -> dict[str, Any]: ...
    def delete_worker_block(self, **params: Any) -> dict[str, Any]: ...
    def update_expiration_for_hit(self, **params: Any) -> dict[str, Any]: ...
    def delete_hit(self, **params: Any) -> dict[str, Any]: ...


def connect(environment: str, endpoint_url: str = "") -> MTurkClient:
    """A boto3 MTurk client for `sandbox` or `production` (MTurk lives in us-east-1 only), at
    `endpoint_url` when one is given."""
    if environment not in ENDPOINTS:
        raise MTurkError(f"Unknown Mechanical Turk environment {environment!r}: use sandbox or production.")
    endpoint = endpoint_url or ENDPOINTS[environment]
    client: MTurkClient = boto3.session.Session().client(
        "mturk", region_name="us-east-1", endpoint_url=endpoint, config=RETRIES
    )
    return client


def call(client: MTurkClient, operation: str, **params: Any) -> dict[str, Any]:
    """One MTurk call, its errors turned into a clear MTurkError."""
    try:
        return getattr(client, operation)(**params)
    except ClientError as error:
        info = error.response.get("Error", {})
        raise MTurkError(
            f"Mechanical Turk refused {error.operation_name}: {info.get('Message') or info.get('Code') or error}"
        ) from error
    except BotoCoreError as error:
        raise MTurkError(f"Could not reach Mechanical Turk for {operation}: {error}") from error


def reject_assignment(client: MTurkClient, assignment_id: str, feedback: str) -> None:
    call(client, "reject_assignment", AssignmentId=assignment_id, RequesterFeedback=feedback)


def create_additional_assignments(client: MTurkClient, hit_id: str, number: int, token: str) -> None:
    """More answers for a HIT; the token makes a retried request create nothing twice."""
    call(
        client,
        "create_additional_assignments_for_hit",
        HITId=hit_id,
        NumberOfAdditionalAssignments=number,
        UniqueRequestToken=token[:64],
    )


# Reading ------------------------------------------------------------------------------------------


def pages(client: MTurkClient, operation: str, key: str, **params: Any) -> list[dict]:
    """Every item of a paginated list call, following NextToken to the end."""
    items: list[dict] = []
    token = None
    while True:
        response = call(client, operation, **params, **({"NextToken": token} if token else {}))
        items += response.get(key, [])
        token = response.get("NextToken")
        if not token or not response.get(key):
            return items


def account_balance(client: MTurkClient) -> Decimal:
    return Decimal(call(client, "get_account_balance")["AvailableBalance"])


def get_hit(client: MTurkClient, hit_id: str) -> dict | None:
    """The HIT, or None when MTurk no longer knows it (deleted, or disposed long ago)."""
    try:
        return call(client, "get_hit", HITId=hit_id)["HIT"]
    except MTurkError as error:
        if "does not exist" in str(error) or "not found" in str(error).lower():
            return None
        raise


def list_assignments(client: MTurkClient, hit_id: str) -> list[dict]:
    """All of a HIT's assignments in every status (submitted, approved, rejected)."""
    return pages(
        client,
        "list_assignments_for_hit",
        "Assignments",
        HITId=hit_id,
        MaxResults=100,
        AssignmentStatuses=["Submitted", "Approved", "Rejected"],
    )


# Writing ------------------------------------------------------------------------------------------

SYSTEM_QUALIFICATIONS = {
    "approval_rate": "000000000000000000L0",  # PercentAssignmentsApproved
    "approved_hits": "00000000000000000040",  # NumberHITsApproved
    "locale": "00000000000000000071",
}
HIT_ID = re.compile(r"\b[A-Z0-9]{30}\b")


def qualification_requirements(
    *,
    approval_rate: int | None = 95,
    approved_hits: int | None = 100,
    locales: list[str] | None = None,
    custom_type: str = "",
    custom_min: int = 1,
) -> list[dict]:
    """MTurk's QualificationRequirements: a minimum approval rate and count of approved HITs (the
    field's usual defaults), optional locales (country codes, or country-subdivision like US-CA),
    and optionally a qualification of our own (a test workers pass first)."""
    requirements = []
    if approval_rate is not None:
        requirements.append(
            {
                "QualificationTypeId": SYSTEM_QUALIFICATIONS["approval_rate"],
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [approval_rate],
                "ActionsGuarded": "Accept",
            }
        )
    if approved_hits is not None:
        requirements.append(
            {
                "QualificationTypeId": SYSTEM_QUALIFICATIONS["approved_hits"],
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [approved_hits],
                "ActionsGuarded": "Accept",
            }
        )
    if locales:
        values = [dict(zip(("Country", "Subdivision"), code.upper().split("-", 1), strict=False)) for code in locales]
        requirements.append(
            {
                "QualificationTypeId": SYSTEM_QUALIFICATIONS["locale"],
                "Comparator": "In",
                "LocaleValues": values,
                "ActionsGuarded": "Accept",
            }
        )
    if custom_type:
        requirements.append(
            {
                "QualificationTypeId": custom_type,
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [custom_min],
                "ActionsGuarded": "Accept",
            }
        )
    return requirements


def create_qualification_test(
    client: MTurkClient, *, name: str, description: str, test_xml: str, answer_key_xml: str, minutes: int = 20
) -> str:
    """A qualification type whose test MTurk scores with the answer key; returns its id."""
    response = call(
        client,
        "create_qualification_type",
        Name=name,
        Description=description,
        QualificationTypeStatus="Active",
        Test=test_xml,
        AnswerKey=answer_key_xml,
        TestDurationInSeconds=minutes * 60,
        RetryDelayInSeconds=24 * 3600,
    )
    return response["QualificationType"]["QualificationTypeId"]


def create_hit_type(
    client: MTurkClient,
    *,
    title: str,
    description: str,
    keywords: str,
    reward: Decimal,
    assignment_seconds: int,
    auto_approval_seconds: int,
    qualifications: list[dict],
) -> str:
    """MTurk returns the same HITTypeId for the same properties, so calling it again is harmless."""
    return call(
        client,
        "create_hit_type",
        Title=title,
        Description=description,
        Keywords=keywords,
        Reward=f"{reward:.2f}",
        AssignmentDurationInSeconds=assignment_seconds,
        AutoApprovalDelayInSeconds=auto_approval_seconds,
        QualificationRequirements=qualifications,
    )["HITTypeId"]


def create_hit(
    client: MTurkClient,
    *,
    hit_type_id: str,
    question: str,
    max_assignments: int,
    lifetime_seconds: int,
    annotation: str,
    token: str,
) -> tuple[str, bool]:
    """(HITId, created). With a token MTurk saw in the last 24 hours it refuses with HitAlreadyExists
    and names the HIT: then that HIT is returned, so a publish re-run after a crash creates nothing."""
    try:
        response = call(
            client,
            "create_hit_with_hit_type",
            HITTypeId=hit_type_id,
            Question=question,
            MaxAssignments=max_assignments,
            LifetimeInSeconds=lifetime_seconds,
            RequesterAnnotation=annotation[:255],
            UniqueRequestToken=token[:64],
        )
        return response["HIT"]["HITId"], True
    except MTurkError as error:
        cause = error.__cause__
        code = cause.response.get("TurkErrorCode", "") if isinstance(cause, ClientError) else ""
        if "HitAlreadyExists" in code or "HitAlreadyExists" in str(error) or "already exists" in str(error):
            found = HIT_ID.search(str(error))
            if found:
                return found.group(0), False
            for hit in pages(client, "list_hits", "HITs", MaxResults=100):
                if hit.get("RequesterAnnotation") == annotation[:255]:
                    return hit["HITId"], False
        raise


def approve_assignment(
    client: MTurkClient, assignment_id: str, feedback: str = "", override_rejection: bool = False
) -> None:
    params = {"AssignmentId": assignment_id, "OverrideRejection": override_rejection}
    if feedback:
        params["RequesterFeedback"] = feedback
    call(client, "approve_assignment", **params)


def send_bonus(
    client: MTurkClient, *, worker_id: str, assignment_id: str, amount: Decimal, reason: str, token: str
) -> None:
    call(
        client,
        "send_bonus",
        WorkerId=worker_id,
        AssignmentId=assignment_id,
        BonusAmount=f"{amount:.2f}",
        Reason=reason,
        UniqueRequestToken=token[:64],
    )


def block_worker(client: MTurkClient, worker_id: str, reason: str) -> None:
    call(client, "create_worker_block", WorkerId=worker_id, Reason=reason)


def unblock_worker(client: MTurkClient, worker_id: str, reason: str = "") -> None:
    call(client, "delete_worker_block", WorkerId=worker_id, **({"Reason": reason} if reason else {}))


def update_expiration(client: MTurkClient, hit_id: str, expire_at: datetime) -> None:
    """A time in the past expires the HIT now (workers can no longer accept it); a later one extends it."""
    call(client, "update_expiration_for_hit", HITId=hit_id, ExpireAt=expire_at)


def delete_hit(client: MTurkClient, hit_id: str) -> None:
    call(client, "delete_hit", HITId=hit_id)
