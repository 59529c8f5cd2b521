"""Aggregation over stored answers: the authors' released answers give METHOD's table exactly; imports
report bad rows and never duplicate; exports carry labels and answers; answers trigger aggregation."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotator import selectors
from annotator.models import Answer, Layer, Unit, UnitLabel

pytestmark = pytest.mark.django_db
FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "zhou2015" / "places205-alexnet_annotations.csv"
METHOD_TABLE = {  # METHOD.md stage 6: type shares (scene, object, region, part, texture, colour), detectors
    "pool1": ((0.0035, 0.0312, 0.0104, 0.0104, 0.1528, 0.7917), 96, 63),
    "pool2": ((0.0430, 0.1211, 0.1120, 0.0690, 0.0964, 0.5586), 256, 130),
    "conv3": ((0.0920, 0.2526, 0.1467, 0.1389, 0.0564, 0.3134), 384, 211),
    "conv4": ((0.0582, 0.3134, 0.1858, 0.1441, 0.0755, 0.2231), 384, 199),
    "pool5": ((0.1628, 0.3815, 0.1693, 0.1237, 0.0534, 0.1094), 256, 151),
}


def test_the_authors_answers_give_methods_table(capsys) -> None:
    call_command("import_annotations", str(FIXTURE), "--network", "places205-alexnet")
    out = capsys.readouterr().out
    assert "1376 rows, 4128 answers added" in out and "0 bad rows" in out
    summaries = {row.layer: row for row in selectors.layer_summaries("places205-alexnet")}
    assert list(summaries) == list(METHOD_TABLE)
    for layer, (shares, units, detectors) in METHOD_TABLE.items():
        row = summaries[layer]
        assert row.units == units and row.answers == 3 * units and row.pending == 0
        assert tuple(round(share, 4) for share in row.type_shares.values()) == shares, layer
        assert row.detectors == detectors, layer
        assert 0 < row.alpha < 1
    assert summaries["pool5"].object_detectors == 59
    assert Layer.objects.get(name="pool5").num_units == 256
    # Importing again adds nothing; aggregating again changes nothing.
    before = list(UnitLabel.objects.order_by("unit_id").values_list("label", "category", "precision", "status"))
    call_command("import_annotations", str(FIXTURE), "--network", "places205-alexnet")
    assert "0 answers added, 4128 already present" in capsys.readouterr().out
    assert Answer.objects.count() == 4128
    assert list(UnitLabel.objects.order_by("unit_id").values_list("label", "category", "precision", "status")) == before


def test_one_threshold_and_method_from_the_settings_and_one_detector_rule(settings, tmp_path, capsys) -> None:
    settings.UNIT_DETECTOR_THRESHOLD = 0.9
    settings.AGGREGATION_METHOD = "dawid-skene"
    call_command("import_annotations", str(FIXTURE), "--network", "places205-alexnet", "--no-aggregate")
    with pytest.raises(CommandError, match="Dawid-Skene weighs workers"):  # the setting's method is used
        call_command("aggregate", "--network", "places205-alexnet")
    call_command("aggregate", "--network", "places205-alexnet", "--method", "majority")
    strict = {row.layer: row.detectors for row in selectors.layer_summaries("places205-alexnet")}
    assert all(strict[layer] < detectors for layer, (_, _, detectors) in METHOD_TABLE.items())
    labels = UnitLabel.objects.filter(unit__layer__name="pool5")
    assert strict["pool5"] == sum(label.precision >= 0.9 for label in labels)
    # A reviewer's status is the one the summaries, the figures and the comparison count.
    label = labels.filter(status="detector").first()
    UnitLabel.objects.filter(pk=label.pk).update(review_status="not_detector")
    assert selectors.layer_summaries("places205-alexnet", layer="pool5")[0].detectors == strict["pool5"] - 1
    call_command("figures", "--network", "places205-alexnet", "--out", str(tmp_path))
    assert (tmp_path / "places205-alexnet_objects.svg").exists()


def test_bad_rows_are_reported_by_number_and_good_rows_kept(tmp_path, capsys) -> None:
    path = tmp_path / "answers.csv"
    path.write_text(
        "network,layer,unit,worker,description,category,precision\n"
        "n,conv3,0,w1,Cars,object,0.9\n"
        "n,conv3,x,w1,car,object,0.9\n"
        "n,conv3,0,w2,,object,0.9\n"
        "n,conv3,0,w3,car,animal,0.9\n"
        "n,conv3,0,w4,car,2,1.5\n"
        "n,,0,w5,car,2,0.5\n"
        "n,conv3,1,w1,sky,Region or surface,0.5\n"
    )
    call_command("import_annotations", str(path), "--network", "n")
    err = capsys.readouterr().err
    for row, reason in (
        (3, "unit 'x' is not a whole number"),
        (4, "empty description"),
        (5, "category 'animal'"),
        (6, "precision '1.5' is not between 0 and 1"),
        (7, "empty layer"),
    ):
        assert f"skipped row {row}: " in err and reason in err
    assert sorted(Answer.objects.values_list("description", "category", "worker__external_id")) == [
        ("Cars", "object", "w1"),
        ("sky", "region", "w1"),
    ]
    assert UnitLabel.objects.get(unit__index=0).label == "car"


def test_unreadable_import_files(tmp_path) -> None:
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_annotations", str(tmp_path / "none.csv"), "--network", "n")
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(CommandError, match="unknown columns a, b; expected the wide format"):
        call_command("import_annotations", str(odd), "--network", "n")


def test_dawid_skene_needs_worker_ids() -> None:
    call_command("import_annotations", str(FIXTURE), "--network", "p", "--no-aggregate")
    with pytest.raises(CommandError, match="some answers have no worker"):
        call_command("aggregate", "--network", "p", "--method", "dawid-skene")


def test_exports_carry_labels_answers_and_a_tally(tmp_path) -> None:
    call_command("import_annotations", str(FIXTURE), "--network", "p")
    out = tmp_path / "units.json"
    call_command("export", "--format", "json", "--network", "p", "--layer", "pool5", "--output", str(out))
    records = {r["unit"]: r for r in json.loads(out.read_text())}
    unit = records[0]
    label = UnitLabel.objects.get(unit__layer__name="pool5", unit__index=0)
    assert (unit["label"], unit["category"], unit["status"]) == (label.label, label.category, label.status)
    assert unit["category"] in {"scene", "object", "region", "part", "texture", "color"}
    assert len(unit["answers"]) == 3 and set(unit["answers"][0]) == {
        "worker",
        "description",
        "category",
        "precision",
        "counts",
        "confirmation",
        "not_counted_because",
    }
    assert all(a["counts"] for a in unit["answers"]), "imported answers count"
    tally = tmp_path / "tally.csv"
    call_command("export", "--format", "tally", "--network", "p", "--layer", "pool5", "--output", str(tally))
    rows = list(csv.DictReader(io.StringIO(tally.read_text())))
    assert list(rows[0])[:4] == ["unit", "category", "label", "score"]
    assert len(rows) == 256 and float(rows[0]["score"]) >= float(rows[-1]["score"])
    assert {int(r["unit"]) for r in rows} == set(range(1, 257))
    table = tmp_path / "units.txt"
    call_command("export", "--format", "table", "--network", "p", "--layer", "pool5", "--output", str(table))
    lines = table.read_text().splitlines()
    assert len(lines) == 257 and "not_detector" not in table.read_text() and "needs_review" not in table.read_text()
    assert all(line.endswith(("pending", "detector", "not a detector", "needs review")) for line in lines[1:])
    assert any(line.endswith("not a detector") for line in lines), "the terminal's table says it in words"


def test_an_answer_through_the_hit_page_updates_the_unit_label(
    world_dir, client, django_capture_on_commit_callbacks
) -> None:
    from annotator.models import Assignment
    from annotator.services.workers import lab_link_create
    from tests.factories import concept_network

    concept_network(world_dir, concepts=("car", "house"))
    call_command("create_campaign", "c", "--network", "world", "--layers", "conv3", "--answers-per-unit", "1")
    call_command("publish", "c", "--backend", "local")
    client.post(lab_link_create(label="seat-1")[1])
    assignment = Assignment.objects.get(external_id=client.post("/annotate/next/").url.rstrip("/").rsplit("/", 1)[1])
    hit = assignment.hit
    gold = [str(p) for p in hit.slots.filter(gold=True).values_list("position", flat=True)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(
            f"/annotate/a/{assignment.external_id}/", {"description": "Cars", "category": "object", "mismatch": gold}
        )
    assert len(callbacks) == 1, "one aggregation task, sent after the answer is committed"
    label = UnitLabel.objects.get(unit=hit.unit)
    assert (label.label, label.category, label.precision, label.status) == ("car", "object", 1.0, "detector")
    call_command("aggregate", "--network", "world")
    assert Unit.objects.get(layer__network__name="world", index=1).label.status == "pending"
