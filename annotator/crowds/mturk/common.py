"""What every part of the MTurk adapter shares: its name, its client (built here only, from Django
settings), its workers, and MTurk's errors turned into the crowd's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from annotator.crowds.base import CrowdError
from annotator.models import Campaign, Worker
from mturk import client as mturk
from mturk.client import MTurkClient

NAME = "mturk"


def mturk_client(environment: str) -> MTurkClient:
    """The boto3 client for a campaign's environment (sandbox or production); settings.MTURK_ENDPOINT_URL
    points it elsewhere (a proxy, a local service). Credentials: boto3's chain (AWS_ACCESS_KEY_ID, ...)."""
    with mturk_errors():
        return mturk.connect(environment, settings.MTURK_ENDPOINT_URL)


@contextmanager
def mturk_errors() -> Iterator[None]:
    """MTurk's refusals, in its words, as the crowd's error."""
    try:
        yield
    except mturk.MTurkError as error:
        raise CrowdError(str(error)) from error


def mturk_worker(campaign: Campaign, worker_id: str) -> Worker:
    """The worker MTurk names, in the campaign's environment (a sandbox worker is not a production one)."""
    worker, _ = Worker.objects.get_or_create(kind=NAME, environment=campaign.environment, external_id=worker_id)
    return worker
