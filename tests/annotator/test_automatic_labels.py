"""Network Dissection's labels computed here: `dissect --features FILE.npy --probe broden DIR` labels
activations made elsewhere, `export --format netdissect` writes NetDissect-Lite's tally.csv, the labels
sit beside the crowd's (source "iou"), and every bad input is refused, naming the file, with nothing
written."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from annotator.models import AutoLabel, Campaign, Image, Network
from pipeline import broden, tally
from tests.pipeline.broden_set import make
from tests.pipeline.test_tally import run

pytestmark = pytest.mark.django_db


@pytest.fixture
def probe(tmp_path):
    root, features = make(tmp_path / "broden")
    np.save(tmp_path / "features.npy", features)
    return root, tmp_path / "features.npy", features


def test_features_are_labelled_and_the_tally_is_netdissects(probe, tmp_path, capsys) -> None:
    root, path, features = probe
    call_command("dissect", "--features", str(path), "--probe", "broden", str(root), "--name", "elsewhere", "--quiet")
    assert "elsewhere / features:" in capsys.readouterr().out
    _, counted, expected = run(broden.read(root), features)
    rows = {a.unit.index: a for a in AutoLabel.objects.filter(source="iou").select_related("unit")}
    assert len(rows) == 5 and Network.objects.get(name="elsewhere").layers.get().name == "features"
    for result in expected:
        row = rows[result.unit]
        assert (row.label, row.source_category, row.detector) == (result.label, result.category, result.detector)
        assert row.score == pytest.approx(result.score, rel=1e-12) and row.threshold is not None
    out = tmp_path / "tally.csv"
    call_command(
        "export", "--format", "netdissect", "--network", "elsewhere", "--layer", "features", "--output", str(out)
    )
    assert out.read_bytes() == tally.tally_csv(counted, broden.read(root), expected).encode()
    assert b"\r\n" in out.read_bytes()
    records = tmp_path / "units.json"
    call_command("export", "--format", "json", "--network", "elsewhere", "--output", str(records))
    first = json.loads(records.read_text())[0]["automatic"][0]
    assert (first["source"], first["label"], first["iou"]) == ("iou", rows[0].label, rows[0].score)
    assert first["threshold"] == rows[0].threshold
    # Again with the thresholds it found, given: the same labels (one pass).
    levels = tmp_path / "levels.npy"
    np.save(levels, np.array([r.threshold for r in sorted(rows.values(), key=lambda r: r.unit.index)]))
    call_command(
        "dissect", "--features", str(path), "--probe", "broden", str(root), "--name", "elsewhere",
        "--thresholds", str(levels), "--quiet",
    )  # fmt: skip
    again = {a.unit.index: (a.label, a.score) for a in AutoLabel.objects.filter(source="iou").select_related("unit")}
    assert again == {i: (r.label, r.score) for i, r in rows.items()} and AutoLabel.objects.count() == 5


def test_bad_features_thresholds_and_probe_sets_are_refused_and_nothing_is_written(probe, tmp_path) -> None:
    root, path, features = probe
    np.save(tmp_path / "short.npy", features[:5])
    np.save(tmp_path / "levels.npy", np.ones(3))
    (tmp_path / "nan.npy").write_bytes(b"not a numpy file")
    cases = [
        (["--features", str(tmp_path / "short.npy")], "has shape (5, 5, 7, 7); it must be N x U x h x w with N = 24"),
        (["--features", str(path), "--thresholds", str(tmp_path / "levels.npy")], "holds (3,) values; the layer has 5"),
        (["--features", str(tmp_path / "nan.npy")], "Cannot read the features file"),
        (["--features", str(path), "--probe", "broden", str(tmp_path / "nowhere")], "No probe set folder"),
    ]
    for extra, message in cases:
        args = ["dissect", "--probe", "broden", str(root), "--name", "x", "--quiet", *extra]
        with pytest.raises(CommandError, match=re.escape(message)):
            call_command(*args)
        assert not Network.objects.exists() and not AutoLabel.objects.exists()
    with pytest.raises(CommandError, match="--features needs --probe broden DIR"):
        call_command("dissect", "--features", str(path), "--name", "x")
    with pytest.raises(CommandError, match="has no automatic labels computed here"):
        Network.objects.create(name="plain").layers.create(name="conv3", order=0)
        call_command("export", "--format", "netdissect", "--network", "plain", "--layer", "conv3")


def test_a_dissected_network_is_labelled_on_the_demo_world_as_a_broden_probe_set(
    demo_dir, tmp_path, capsys, admin_client
) -> None:
    import shutil

    from annotator.models import Layer
    from annotator.selectors.automatic import netdissect_comparison
    from pipeline import crowd, demo_broden, demo_world
    from tests.annotator.helpers import dissect_args

    world = tmp_path / "world"
    shutil.copytree(demo_dir, world)
    call_command("demo_world", "--out", str(world), "--broden")
    shutil.copy(world / "labels" / "000000_object.png", world / "images" / "a_label_png.png")  # as in Broden
    args = dissect_args(world / "images", layers="conv3")
    call_command(*args[:5], "--probe", "broden", str(world), *args[7:])  # dissect the probe set, then label it
    out = capsys.readouterr().out
    assert "demo: 48 images read" in out and "demo / conv3:" in out and "units are detectors by IoU >= 0.04" in out
    assert not Image.objects.filter(path="a_label_png.png").exists(), "only the images index.csv lists"
    call_command("label_automatic", "demo", "--probe", str(world), "--quiet")  # again, by itself: the same
    assert "demo / conv3:" in capsys.readouterr().out
    conv3 = Layer.objects.get(name="conv3")
    labels = AutoLabel.objects.filter(unit__layer=conv3, source="iou")
    assert labels.count() == 64 and all(a.threshold is not None for a in labels)
    # A unit's IoU label is a concept of the world, and its intersection is where the concept really is.
    names = {name for name in demo_world.VOCAB}
    assert {a.label for a in labels if a.label} <= names
    numbers = demo_broden.numbering()
    probe = broden.read(world)
    truth = demo_world.load_truth(world)
    row = {name: i for i, name in enumerate(truth["names"].tolist())}
    first = probe.images[0]
    layers = probe.pixel_layers(first)
    for concept in ("car", "sky", "wheel"):
        present = crowd.presence_truth(truth, concept)[row[first.image]]
        assert present == (numbers[concept][0] in layers), f"the {concept} PNG matches the world's truth"
    assert netdissect_comparison(conv3, source="iou").rows, "the comparison page reads the in-house labels"
    grid = admin_client.get(f"/dashboard/layer/{conv3.pk}/", {"auto": "disagree"}).content.decode()
    assert grid.count('class="auto-label"') == 64, "no crowd label yet: every automatic label disagrees"
    assert (
        admin_client.get(f"/dashboard/layer/{conv3.pk}/", {"auto": "agree"})
        .content.decode()
        .count('class="auto-label"')
        == 0
    )
    with_label = [a for a in labels if a.label]
    assert with_label and all(1 <= len(a.examples) <= 3 for a in with_label), "pictures of each label's unit"
    unit_page = admin_client.get(f"/dashboard/unit/{with_label[0].unit_id}/").content.decode()
    assert unit_page.count('alt="unit ') == len(with_label[0].examples)
    assert admin_client.get("/dashboard/media/" + with_label[0].examples[0]).status_code == 200
    detectors = labels.filter(detector=True)
    summary = f"<strong>{detectors.count()}</strong> of 64 units are detectors, covering"
    assert summary in admin_client.get(f"/dashboard/layer/{conv3.pk}/").content.decode()
    figures = admin_client.get(f"/dashboard/network/{conv3.network_id}/figures/").content.decode()
    bars = [int(n) for n in re.findall(r'data-units="(\d+)"', figures.split('id="figure-automatic"')[1])]
    assert sum(bars) == detectors.count(), "the bar graph of IoU detector labels counts every detector once"
    page = admin_client.get(f"/dashboard/layer/{conv3.pk}/netdissect/").content.decode()
    assert "Network Dissection (computed here)" in page
    # Spend the crowd where it matters: only the units the automatic labels do not settle.
    below = {a.unit_id for a in labels if a.score < 0.04}
    call_command("create_campaign", "weak", "--network", "demo", "--layers", "conv3", "--units", "iou-below", "0.04")
    assert set(Campaign.objects.get(name="weak").hits.values_list("unit_id", flat=True)) == below
    call_command("create_campaign", "all", "--network", "demo", "--layers", "conv3", "--units", "disagree")
    assert Campaign.objects.get(name="all").hits.count() == 64, "no crowd label yet: none agrees"
    # Reviewers see the automatic label (above); annotators never do: a HIT's page is the same byte for
    # byte with the automatic labels and without them.
    from tests.factories import put_on_mturk

    hits = put_on_mturk("all")[:3]
    pages = [Client().get(f"/hit/{hit.key}/").content for hit in hits]
    assert all(b"IoU" not in page and b"Network Dissection" not in page for page in pages)
    kept = list(AutoLabel.objects.filter(unit__layer=conv3).values())
    AutoLabel.objects.filter(unit__layer=conv3).delete()
    assert [Client().get(f"/hit/{hit.key}/").content for hit in hits] == pages
    AutoLabel.objects.bulk_create(AutoLabel(**row) for row in kept)
    with pytest.raises(CommandError, match="iou-below takes an IoU between 0 and 1"):
        call_command("create_campaign", "x", "--network", "demo", "--layers", "conv3", "--units", "iou-below", "2")
    other, _ = make(tmp_path / "other")  # a probe set of other images
    with pytest.raises(CommandError, match="not the probe set's"):
        call_command("label_automatic", "demo", "--probe", str(other))
    with pytest.raises(CommandError, match="No dissection of a network named 'nope'"):
        call_command("label_automatic", "nope", "--probe", str(world))
