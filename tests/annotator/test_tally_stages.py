"""A dissected network's automatic labels as steps of its dissection: `dissect --probe broden DIR`
runs the network once (the activation pass keeps the maps the tally reads), the tally is the same
with one chunk and with three, on Celery workers and here, and an interrupted run resumes without
redoing a finished chunk."""

from __future__ import annotations

import shutil
import time

import pytest
from django.core.management import call_command

from annotator.models import AutoLabel, Dissection, Layer
from annotator.services import artifacts, tally_stages
from annotator.services.automatic_labels import tally_csv_of
from tests.annotator.helpers import dissect_args

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(demo_dir, tmp_path):
    root = tmp_path / "world"
    shutil.copytree(demo_dir, root)
    call_command("demo_world", "--out", str(root), "--broden")
    return root


def probe_dissect(world, name: str, *extra: str) -> None:
    args = dissect_args(world / "images", name=name, layers="conv3")
    call_command(*args[:5], "--probe", "broden", str(world), *args[7:], *extra)


def labels_of(name: str) -> list[tuple]:
    rows = AutoLabel.objects.filter(unit__layer__network__name=name, source="iou").order_by("unit__index")
    return [(a.unit.index, a.label, a.score, a.threshold, len(a.examples)) for a in rows.select_related("unit")]


def tally_of(name: str) -> bytes:
    return tally_csv_of(Layer.objects.get(network__name=name, name="conv3"))


def test_the_network_runs_once_and_one_chunk_or_three_give_the_same_tally(world, monkeypatch, capsys) -> None:
    def no_second_run(*_args, **_kwargs):
        raise AssertionError("the network ran a second time over the probe set")

    monkeypatch.setattr(tally_stages, "network_for", no_second_run)
    probe_dissect(world, "one", "--chunk-size", "48")
    probe_dissect(world, "three", "--chunk-size", "16")
    out = capsys.readouterr().out
    assert "one / conv3:" in out and "three / conv3:" in out
    assert Dissection.objects.get(network__name="three").chunks.count() == 3
    assert tally_of("one") == tally_of("three"), "identical tally.csv with 1 and 3 chunks"
    assert labels_of("one") == labels_of("three") and len(labels_of("one")) == 64
    three = Dissection.objects.get(network__name="three")
    assert not artifacts.media_path(f"{tally_stages._root(three)}/maps").exists(), "the kept maps are deleted"
    call_command("dissect", "--status", "--name", "three")
    assert "IoU tally chunks: 3/3 (100%)" in capsys.readouterr().out


def test_labelling_a_dissection_made_before_runs_the_network_once_more_and_resumes(world, monkeypatch, capsys) -> None:
    probe_dissect(world, "direct")
    args = dissect_args(world / "images", name="later", layers="conv3")
    call_command(*args, "--chunk-size", "16")  # every image of the folder: the probe's 48
    assert not AutoLabel.objects.filter(unit__layer__network__name="later").exists()
    calls: list[tuple[str, int]] = []
    real = dict(tally_stages.STEPS)

    def interrupted(dissection_id: int, index: int) -> None:
        calls.append(("tally", index))
        if len(calls) == 2:
            raise KeyboardInterrupt
        real["tally"](dissection_id, index)

    monkeypatch.setitem(tally_stages.STEPS, "tally", interrupted)
    with pytest.raises(SystemExit):
        call_command("label_automatic", "later", "--probe", str(world), "--quiet")
    assert "Finished steps are kept" in capsys.readouterr().err
    monkeypatch.setitem(tally_stages.STEPS, "tally", lambda d, i: (calls.append(("tally", i)), real["tally"](d, i)))
    monkeypatch.setitem(
        tally_stages.STEPS, "probe_maps", lambda d, i: (calls.append(("maps", i)), real["probe_maps"](d, i))
    )
    calls.clear()
    call_command("label_automatic", "later", "--probe", str(world), "--quiet")
    assert calls == [("tally", 1), ("tally", 2)], "chunk 0's counts and every chunk's maps are kept"
    assert tally_of("later") == tally_of("direct")
    assert [row[1:] for row in labels_of("later")] == [row[1:] for row in labels_of("direct")]
    assert "later / conv3:" in capsys.readouterr().out


def test_an_unreadable_probe_image_is_left_out_and_named(world, capsys) -> None:
    import csv

    with (world / "index.csv").open() as f:
        rows = list(csv.DictReader(f))
    (world / "images" / rows[3]["image"]).write_bytes(b"not a picture")
    probe_dissect(world, "broken")
    out = capsys.readouterr().out
    assert "1 image(s) of" in out and f"row 5 ({rows[3]['image']})" in out and "left out of the tally" in out
    assert len(labels_of("broken")) == 64


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_queued_automatic_labels_equal_in_process(world, capsys) -> None:
    import os

    from celery.contrib.testing.worker import start_worker
    from django.db import connections

    from config.celery import app
    from tests.annotator.helpers import broker

    probe_dissect(world, "here", "--chunk-size", "48")
    queues = ["activations", "sweeps", "segmentation"]
    with (
        broker(os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/15"),
        start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=queues),
    ):
        probe_dissect(world, "queued", "--chunk-size", "16", "--queue")
        deadline = time.monotonic() + 240
        while Dissection.objects.get(network__name="queued").stage != Dissection.Stage.DONE:
            assert time.monotonic() < deadline, "queued dissection did not finish"
            time.sleep(0.5)
    connections.close_all()
    assert tally_of("queued") == tally_of("here")
    assert labels_of("queued") == labels_of("here")


def test_given_thresholds_label_the_network_path_as_they_label_the_features_path(world, tmp_path) -> None:
    """`dissect --network ... --probe broden DIR --thresholds FILE.npy` (a published dissection's levels)
    labels on exactly those levels: the tally equals `dissect --features` on the same maps with the same
    file, byte for byte. A file that does not fit the layer is refused, naming it."""
    import csv

    import numpy as np
    import torch
    from django.core.management.base import CommandError

    from pipeline import activations, images
    from pipeline.networks import build_network

    probe_dissect(world, "quantiles")
    levels = np.array([t for *_, t, _ in labels_of("quantiles")]) * 0.8  # not the quantiles
    given = tmp_path / "levels.npy"
    np.save(given, levels)
    probe_dissect(world, "given", "--thresholds", str(given))
    assert [t for *_, t, _ in labels_of("given")] == levels.tolist()
    net = build_network("demo")
    paths = [row["image"] for row in csv.DictReader((world / "index.csv").open())]
    with activations.recording(net.model, ["features.6"]) as records, torch.inference_mode():
        batch = images.load_batch(world / "images", paths, net.preprocessing)
        activations.run(net.model, batch.tensor, records)
    np.save(tmp_path / "maps.npy", records["features.6"].float().numpy())
    call_command(
        "dissect", "--features", str(tmp_path / "maps.npy"), "--probe", "broden", str(world), "--name", "features",
        "--layers", "conv3", "--thresholds", str(given),
    )  # fmt: skip
    assert tally_of("given") == tally_of("features") != tally_of("quantiles")
    np.save(tmp_path / "short.npy", levels[:10])
    with pytest.raises(CommandError, match=r"short\.npy holds \(10,\) values; the layer has 64 units"):
        call_command("label_automatic", "given", "--probe", str(world), "--thresholds", str(tmp_path / "short.npy"))
    with pytest.raises(CommandError, match="needs --probe broden DIR"):
        call_command(*dissect_args(world / "images", name="x", layers="conv3"), "--thresholds", str(given))
    assert [t for *_, t, _ in labels_of("given")] == levels.tolist(), "a refused file changes nothing"
