"""What every part of the Prolific adapter shares: its name, its client (built here only, from Django
settings), the campaign's record of its study, and Prolific's errors turned into the crowd's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings

from annotator.crowds.base import CrowdConfigError, CrowdError
from annotator.models import Campaign
from prolific.client import API_URL, TRIES, ProlificApi, ProlificClient, ProlificError
from prolific.fees import with_fee

NAME = "prolific"
DEFAULT_SHARE = 10  # HITs a participant answers, unless the campaign's study says otherwise


def prolific_client(tries: int | None = None) -> ProlificApi:
    """The client settings describe: PROLIFIC_TOKEN, and PROLIFIC_API_URL (Prolific's own by default);
    `tries` fewer than the default where a participant's page waits on the answer."""
    if not settings.PROLIFIC_TOKEN:
        raise CrowdConfigError("PROLIFIC_TOKEN is not set: create an API token in Prolific's settings.")
    with prolific_errors():
        return ProlificClient(settings.PROLIFIC_TOKEN, settings.PROLIFIC_API_URL or API_URL, tries=tries or TRIES)


@contextmanager
def prolific_errors() -> Iterator[None]:
    """Prolific's refusals, in its words, as the crowd's error."""
    try:
        yield
    except ProlificError as error:
        raise CrowdError(str(error)) from error


def fee_rate() -> Decimal:
    try:
        return Decimal(settings.PROLIFIC_FEE_RATE)
    except InvalidOperation:
        raise CrowdConfigError(
            f"PROLIFIC_FEE_RATE {settings.PROLIFIC_FEE_RATE!r} is not a number such as 0.333."
        ) from None


def fee(amount: Decimal) -> Decimal:
    """A reward or bonus with Prolific's service fee (settings.PROLIFIC_FEE_RATE) on it."""
    return with_fee(amount, fee_rate())


@dataclass
class ProlificState:
    """What a campaign on Prolific keeps in `Campaign.crowd_state`, besides its publish settings: the
    study, its completion code, the reward of one participant's share, and the study's state at sync."""

    study_id: str = ""
    completion_code: str = ""
    status: str = ""
    places: int = 0
    reward: Decimal = Decimal(0)
    hits_per_participant: int = DEFAULT_SHARE
    minutes_per_hit: int = 2  # the publish setting (`--minutes-per-hit`), for the participant's time estimate

    @classmethod
    def of(cls, campaign: Campaign) -> ProlificState:
        state = campaign.crowd_state or {}
        return cls(
            study_id=str(state.get("study_id") or ""),
            completion_code=str(state.get("completion_code") or ""),
            status=str(state.get("status") or ""),
            places=int(state.get("places") or 0),
            reward=Decimal(str(state.get("reward") or "0")),
            hits_per_participant=int(state.get("hits_per_participant") or DEFAULT_SHARE),
            minutes_per_hit=int(state.get("minutes_per_hit") or 2),
        )
