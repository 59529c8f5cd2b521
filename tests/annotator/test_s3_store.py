"""The artifact store on S3 (django-storages) against moto's S3-compatible server on loopback: a
dissection writes every artifact there and nothing to the folder, gives the folder's result, and
the HIT page and the dashboard serve its images from the bucket; two worker processes with separate
local folders share one queued dissection through it."""

from __future__ import annotations

import os

import boto3
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connections
from django.test import Client

from annotator.models import Campaign, Dissection, Hit, ImageSweep, ReceptiveField
from tests.annotator.helpers import broker, dissect_args, snapshot, start_worker, wait, worker_processes

BUCKET = "unit-annotator-artifacts"
REDIS = os.environ.get("CELERY_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture
def s3(monkeypatch, settings):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "file_overwrite": True,
                "default_acl": None,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    yield client
    server.stop()


@pytest.mark.slow
@pytest.mark.django_db
def test_a_dissection_on_s3_matches_the_folder_and_is_served_from_it(image_dir, media_root, s3, settings) -> None:
    storages = settings.STORAGES
    settings.STORAGES = {**storages, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    # First the folder, for the reference.
    call_command(*dissect_args(image_dir, name="folder", layers="conv3"))
    expected = {key[1:]: value for key, value in snapshot("folder").items()}
    files_before = sorted(p.relative_to(media_root) for p in media_root.rglob("*") if p.is_file())
    settings.STORAGES = storages
    call_command(*dissect_args(image_dir, name="bucket", layers="conv3"))
    assert {key[1:]: value for key, value in snapshot("bucket").items()} == expected
    assert sorted(p.relative_to(media_root) for p in media_root.rglob("*") if p.is_file()) == files_before
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    ]
    rf = ReceptiveField.objects.filter(unit__layer__network__name="bucket").first()
    assert rf.picture_path in keys and any(k.endswith(".npz") for k in keys)
    assert any(k.endswith(".jpg") for k in keys)
    # Served from the bucket: a HIT's image slot and the dashboard's artifact view.
    call_command(
        "create_campaign",
        "c",
        "--network",
        "bucket",
        "--layers",
        "conv3",
        "--images-per-hit",
        "6",
        "--gold-per-hit",
        "1",
    )
    Campaign.objects.update(platform="mturk", environment="sandbox", status="published")
    hit = Hit.objects.first()
    image = Client().get(f"/hit/{hit.key}/img/0")
    assert image.status_code == 200 and b"".join(image.streaming_content)[:2] in (b"\xff\xd8", b"\x89P")
    staff = Client()
    reviewer = get_user_model().objects.create_user("r", password="pw", is_staff=True)
    reviewer.groups.add(Group.objects.get(name="reviewer"))
    staff.force_login(reviewer)
    picture = staff.get(f"/dashboard/media/{rf.picture_path}")
    assert picture.status_code == 200 and picture["Content-Type"] == "image/png"
    assert staff.get("/dashboard/media/dissections/nothing-here.png").status_code == 404


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_worker_machines_share_one_dissection_through_the_bucket(
    image_dir, media_root, s3, settings, tmp_path
) -> None:
    """Two worker processes, each with its own (empty) local folder as a second machine would have,
    share a queued dissection through the broker, the database and the bucket alone."""
    storages = settings.STORAGES
    settings.STORAGES = {**storages, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    call_command(*dissect_args(image_dir, name="in-process"))
    expected = snapshot("in-process")
    settings.STORAGES = storages
    options = storages["default"]["OPTIONS"]
    machine = {
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": options["endpoint_url"],
        "AWS_S3_REGION_NAME": "us-east-1",
    }
    folders = {name: tmp_path / f"{name}-media" for name in ("left", "right")}
    logs = {name: tmp_path / f"{name}.log" for name in folders}
    with worker_processes() as workers, broker(REDIS):
        for name, folder in folders.items():
            folder.mkdir()
            workers.append(start_worker(name, REDIS, logs[name], MEDIA_ROOT=str(folder), **machine))
        wait(
            lambda: all(log.exists() and " ready." in log.read_text() for log in logs.values()),
            120,
            "the workers did not start",
        )
        call_command(*dissect_args(image_dir, name="queued"), "--queue")
        wait(
            lambda: Dissection.objects.get(network__name="queued").stage == "done",
            300,
            "the workers did not finish the dissection",
        )
    connections.close_all()
    assert snapshot("queued") == expected
    for name, log in logs.items():
        assert log.read_text().count("succeeded in") > 0, f"worker {name} did no task"
    # Nothing reached either worker's folder, nor the test's beyond the reference: all went to the bucket.
    assert [p for folder in folders.values() for p in folder.rglob("*") if p.is_file()] == []
    folders_written = {p.relative_to(media_root).parts[1] for p in media_root.rglob("*") if p.is_file()}
    assert len(folders_written) == 1 and folders_written.pop().endswith("-in-process")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    ]
    assert all(k.startswith("dissections/") for k in keys)
    assert (
        sum(k.endswith(".npz") for k in keys)
        >= ImageSweep.objects.filter(dissection__network__name="queued", occluded=True).count()
    )
