"""The only place that speaks to Prolific's REST API. The caller gives the token and the API's address
(the Prolific crowd adapter: settings.PROLIFIC_TOKEN and PROLIFIC_API_URL, Prolific's own by default).

Prolific does not support concurrent requests, so one lock lets one request out at a time per
process; a 429 (throttled) or a 5xx answer is retried with exponential backoff (Retry-After when
given). Any refusal becomes a ProlificError: "Prolific refused <call>: <its message>"."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Protocol
from urllib.parse import urljoin

import requests

API_URL = "https://api.prolific.com"
COMPLETION_URL = "https://app.prolific.com/submissions/complete"
TRIES = 6
_ONE_AT_A_TIME = threading.Lock()

# What Prolific names things (its API reference: studies, submissions, bonuses).
REJECTION_CATEGORIES = (
    "TOO_QUICKLY",
    "TOO_SLOWLY",
    "FAILED_INSTRUCTIONS",
    "INCOMP_LONGITUDINAL",
    "FAILED_CHECK",
    "LOW_EFFORT",
    "MALINGERING",
    "NO_CODE",
    "BAD_CODE",
    "NO_DATA",
    "UNSUPP_DEVICE",
    "OTHER",
)
# The categories as Prolific's reviewers read them (the dashboard shows these, never the codes).
REJECTION_WORDS = {
    "TOO_QUICKLY": "Too quick",
    "TOO_SLOWLY": "Too slow",
    "FAILED_INSTRUCTIONS": "Did not follow the instructions",
    "INCOMP_LONGITUDINAL": "Did not finish every part of the study",
    "FAILED_CHECK": "Failed an attention check",
    "LOW_EFFORT": "Low effort",
    "MALINGERING": "Answered at random or dishonestly",
    "NO_CODE": "No completion code",
    "BAD_CODE": "Wrong completion code",
    "NO_DATA": "No data",
    "UNSUPP_DEVICE": "Unsupported device",
    "OTHER": "Other",
}
REJECTION_MESSAGE_MIN = 100
RETURNED = ("RETURNED", "TIMED-OUT")  # submissions that free the participant's places
DECIDED = ("APPROVED", "REJECTED")


class ProlificError(Exception):
    """A call Prolific refused or that could not reach it; the message is meant for the researcher.
    `status` is Prolific's HTTP status where it answered (404: no such object), None where it did not."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProlificApi(Protocol):
    """What the tool asks of Prolific (`ProlificClient` does it over HTTP; a test's fake may too)."""

    def studies(self) -> list[dict]: ...
    def study(self, study_id: str) -> dict: ...
    def create_study(self, body: dict) -> dict: ...
    def publish_study(self, study_id: str) -> dict: ...
    def set_places(self, study_id: str, places: int) -> dict: ...
    def cost(self, reward_cents: int, places: int) -> Decimal: ...
    def submissions(self, study_id: str) -> list[dict]: ...
    def submission(self, submission_id: str) -> dict: ...
    def approve(self, submission_id: str) -> dict: ...
    def reject(self, submission_id: str, message: str, category: str) -> dict: ...
    def set_up_bonuses(self, study_id: str, amounts: dict[str, Decimal]) -> dict: ...
    def pay_bonuses(self, bulk_id: str) -> None: ...
    def participant_groups(self, workspace_id: str) -> list[dict]: ...
    def create_participant_group(self, workspace_id: str, name: str) -> dict: ...
    def group_add(self, group_id: str, participant_ids: list[str]) -> None: ...
    def group_remove(self, group_id: str, participant_ids: list[str]) -> None: ...


class ProlificClient:
    """Plain HTTP calls, each named after what it does on Prolific."""

    def __init__(
        self,
        token: str,
        base_url: str = API_URL,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        tries: int = TRIES,
    ) -> None:
        if not token:
            raise ProlificError("PROLIFIC_TOKEN is not set: create an API token in Prolific's settings.")
        self.base_url = base_url.rstrip("/") + "/"
        self.session = session or requests.Session()
        self.session.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})
        self.sleep = sleep
        self.tries = tries

    # The transport -------------------------------------------------------------------------------

    def request(self, name: str, method: str, path: str, body: dict | None = None) -> dict:
        """One call, retried while Prolific throttles (429) or fails (5xx)."""
        url = path if path.startswith("http") else urljoin(self.base_url, path.lstrip("/"))
        delay, attempt = 1.0, 0
        while True:
            attempt += 1
            with _ONE_AT_A_TIME:
                try:
                    response = self.session.request(method, url, json=body, timeout=30)
                except requests.RequestException as error:
                    if attempt == self.tries:
                        raise ProlificError(f"Could not reach Prolific for {name}: {error}") from error
                    response = None
            if response is not None and response.status_code < 400:
                return response.json() if response.content else {}
            retry = response is None or response.status_code == 429 or response.status_code >= 500
            if not retry or attempt == self.tries:
                status = response.status_code if response is not None else None
                raise ProlificError(f"Prolific refused {name}: {_message(response)}", status=status)
            wait = _retry_after(response) if response is not None else None
            self.sleep(wait if wait is not None else delay)
            delay = min(delay * 2, 60.0)

    def pages(self, name: str, path: str) -> Iterator[dict]:
        """Every result of a paginated list, following the `_links.next` of each page."""
        while path:
            page = self.request(name, "GET", path)
            yield from page.get("results", [])
            path = ((page.get("_links") or {}).get("next") or {}).get("href") or ""

    # Studies ---------------------------------------------------------------------------------------

    def studies(self) -> list[dict]:
        return list(self.pages("list studies", "api/v1/studies/"))

    def study(self, study_id: str) -> dict:
        return self.request("get study", "GET", f"api/v1/studies/{study_id}/")

    def create_study(self, body: dict) -> dict:
        return self.request("create study", "POST", "api/v1/studies/", body)

    def publish_study(self, study_id: str) -> dict:
        return self.request("publish study", "POST", f"api/v1/studies/{study_id}/transition/", {"action": "PUBLISH"})

    def set_places(self, study_id: str, places: int) -> dict:
        """Places can only grow once a study is published."""
        return self.request(
            "update study places", "PATCH", f"api/v1/studies/{study_id}/", {"total_available_places": places}
        )

    def cost(self, reward_cents: int, places: int) -> Decimal:
        """Prolific's own price for a study, fees included, in the account's currency."""
        answer = self.request(
            "calculate study cost",
            "POST",
            "api/v1/study-cost-calculator/",
            {"reward": reward_cents, "total_available_places": places},
        )
        return Decimal(str(answer.get("total_cost", 0))) / 100

    # Submissions -----------------------------------------------------------------------------------

    def submissions(self, study_id: str) -> list[dict]:
        return list(self.pages("list submissions", f"api/v1/studies/{study_id}/submissions/"))

    def submission(self, submission_id: str) -> dict:
        """One submission by its id (the SESSION_ID on the study link): its study, participant, status."""
        return self.request("retrieve a submission", "GET", f"api/v1/submissions/{submission_id}/")

    def approve(self, submission_id: str) -> dict:
        return self.request(
            "approve submission", "POST", f"api/v1/submissions/{submission_id}/transition/", {"action": "APPROVE"}
        )

    def reject(self, submission_id: str, message: str, category: str) -> dict:
        """Prolific's rules, checked before the call: 100 characters of explanation and a category."""
        if len(message.strip()) < REJECTION_MESSAGE_MIN:
            raise ProlificError(
                f"Prolific refuses a rejection explained in fewer than {REJECTION_MESSAGE_MIN} "
                f"characters ({len(message.strip())} given): say what the participant did wrong."
            )
        if category not in REJECTION_CATEGORIES:
            raise ProlificError(
                f"Unknown rejection category {category!r}: use one of {', '.join(REJECTION_CATEGORIES)}."
            )
        return self.request(
            "reject submission",
            "POST",
            f"api/v1/submissions/{submission_id}/transition/",
            {"action": "REJECT", "message": message.strip(), "rejection_category": category},
        )

    # Bonuses ---------------------------------------------------------------------------------------

    def set_up_bonuses(self, study_id: str, amounts: dict[str, Decimal]) -> dict:
        """Bonuses in bulk, one CSV line a participant ("<participant id>,<amount>"); nothing is paid yet."""
        csv = "".join(f"{participant},{amount:.2f}\n" for participant, amount in amounts.items())
        return self.request(
            "set up bonuses", "POST", "api/v1/submissions/bonus-payments/", {"study_id": study_id, "csv_bonuses": csv}
        )

    def pay_bonuses(self, bulk_id: str) -> None:
        self.request("pay bonuses", "POST", f"api/v1/bulk-bonus-payments/{bulk_id}/pay/")

    # Blocking: a participant group used as every study's blocklist ----------------------------------

    def participant_groups(self, workspace_id: str) -> list[dict]:
        return list(self.pages("list participant groups", f"api/v1/participant-groups/?workspace_id={workspace_id}"))

    def create_participant_group(self, workspace_id: str, name: str) -> dict:
        return self.request(
            "create participant group",
            "POST",
            "api/v1/participant-groups/",
            {"workspace_id": workspace_id, "name": name},
        )

    def group_add(self, group_id: str, participant_ids: list[str]) -> None:
        self.request(
            "add to participant group",
            "POST",
            f"api/v1/participant-groups/{group_id}/participants/",
            {"participant_ids": participant_ids},
        )

    def group_remove(self, group_id: str, participant_ids: list[str]) -> None:
        self.request(
            "remove from participant group",
            "DELETE",
            f"api/v1/participant-groups/{group_id}/participants/",
            {"participant_ids": participant_ids},
        )


def _message(response: requests.Response | None) -> str:
    if response is None:
        return "no answer"
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        detail = error.get("detail") or error.get("message") or error.get("error") or error
        return f"{detail}" if not isinstance(detail, list) else "; ".join(map(str, detail))
    return str(error)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return min(float(response.headers.get("Retry-After", "")), 60.0)
    except ValueError:
        return None


def completion_url(code: str, base: str = COMPLETION_URL) -> str:
    """Where a participant goes when done: Prolific's completion page (or `base`) with the study's code."""
    return f"{base or COMPLETION_URL}?cc={code}"
