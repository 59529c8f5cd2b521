"""Shared fixtures: artifacts go to a temp MEDIA_ROOT, Celery runs eagerly unless a test asks for
the real broker, and a small demo world is rendered once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.celery import app as celery_app
from pipeline import demo_world


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def fresh_counters():
    """Rate-limit counters (Django's cache) start empty in every test."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def eager_celery():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 demo scenes (8 per class) with their truth."""
    return demo_world.generate(tmp_path_factory.mktemp("world"), 48, seed=11)


@pytest.fixture
def image_dir(tmp_path: Path, demo_dir: Path) -> Path:
    """A private copy of the demo images that a test may add bad files to."""
    import shutil

    target = tmp_path / "images"
    shutil.copytree(demo_dir / "images", target)
    return target


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 demo scenes: enough for 57 top images per concept unit (see tests/factories.py)."""
    return demo_world.generate(tmp_path_factory.mktemp("hit-world"), 240, seed=5)


@pytest.fixture
def stubbed_mturk(monkeypatch):
    """A real boto3 MTurk client, whatever backend the code asks for, whose calls botocore's Stubber
    checks against MTurk's service model; every queued response must be used."""
    import boto3
    from botocore.stub import Stubber

    from mturk import client as mturk

    client = boto3.client("mturk", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    monkeypatch.setattr(mturk, "connect", lambda environment, endpoint_url="": client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def prolific_service(settings):
    """The local Prolific, with the environment a deployment sets pointing at it."""
    from tests.prolific_service import LocalProlific

    service = LocalProlific()
    settings.PROLIFIC_TOKEN = service.token
    settings.PROLIFIC_API_URL = service.url
    settings.PROLIFIC_COMPLETION_URL = f"{service.url}/submissions/complete"
    yield service
    service.close()
