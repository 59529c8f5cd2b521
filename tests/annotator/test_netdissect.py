"""Network Dissection's tally.csv beside the crowd's labels: the real reference file for the paper's
network imports, unit numbers shift from 1-based, and agreement is counted over units both call
detectors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotator.labels import netdissect_label
from annotator.models import AutoLabel, Layer, UnitLabel
from annotator.selectors.automatic import netdissect_comparison
from annotator.services import review

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "zhou2015"
TALLY = FIXTURES / "netdissect_caffe_reference_places205.csv"
CROWD = FIXTURES / "places205-alexnet_annotations.csv"


def test_netdissect_suffixes_are_dropped() -> None:
    assert netdissect_label("street-s") == "street"
    assert netdissect_label("red-c") == "red"
    assert netdissect_label("mountain_snowy-s") == "mountain snowy"
    assert netdissect_label("polka-dotted") == "polka-dotted"


def test_the_reference_tally_sits_beside_the_authors_answers(capsys) -> None:
    with TALLY.open() as handle:
        rows = list(csv.DictReader(handle))
    call_command("import_annotations", str(CROWD), "--network", "places205-alexnet")
    call_command("import_netdissect", str(TALLY), "--network", "places205-alexnet", "--layer", "pool5")
    out = capsys.readouterr().out
    detectors = sum(float(r["score"]) > 0.04 for r in rows)
    assert f"256 rows, 256 labels added, 0 updated, {detectors} detectors" in out
    pool5 = Layer.objects.get(network__name="places205-alexnet", name="pool5")
    assert pool5.units.count() == 256  # the same units the crowd labelled: no unit 256
    # NetDissect's unit 87 is our unit 86: both say car.
    car = AutoLabel.objects.get(unit__layer=pool5, unit__index=86)
    assert (car.label, car.category, car.detector) == ("car", "object", True)
    assert UnitLabel.objects.get(unit=car.unit).label == "car"
    assert AutoLabel.objects.get(unit__layer=pool5, unit__index=208).label == "grass"

    comparison = netdissect_comparison(pool5)
    assert len(comparison.rows) == 256
    assert comparison.both + comparison.crowd_only + comparison.auto_only + comparison.neither == 256
    assert comparison.both + comparison.auto_only == detectors
    assert comparison.both + comparison.crowd_only == 151  # METHOD: 151 pool5 detectors by the crowd
    by_unit = {row.unit.index: row for row in comparison.rows}
    assert by_unit[86].label_match and by_unit[86].category_match
    # grass: a region for people, an object for NetDissect
    assert by_unit[208].label_match and not by_unit[208].category_match
    assert 0 < comparison.label_agree < comparison.both
    # A reviewer's label counts: overriding unit 208's category makes it agree.
    review.unit_override(unit_id=by_unit[208].unit.pk, reviewer=review.Reviewer("r"), category="object")
    assert netdissect_comparison(pool5).category_agree == comparison.category_agree + 1

    # Importing again updates in place.
    call_command("import_netdissect", str(TALLY), "--network", "places205-alexnet", "--layer", "pool5")
    assert "0 labels added, 256 updated" in capsys.readouterr().out
    assert AutoLabel.objects.count() == 256


def test_bad_tally_rows_are_reported_and_bad_files_refused(tmp_path, capsys) -> None:
    path = tmp_path / "tally.csv"
    path.write_text(
        "unit,category,label,score\n1,object,car,0.2\n0,object,tree,0.1\nx,object,sky,0.1\n"
        "3,object,,0.3\n4,texture,striped,nan\n1,object,bus,0.3\n5,material,wood,0.01\n"
    )
    call_command("import_netdissect", str(path), "--network", "n", "--layer", "conv5")
    err = capsys.readouterr().err
    for expected in (
        "row 3: unit '0' is below 1",
        "row 4:",
        "row 5: empty label",
        "row 6: score 'nan'",
        "row 7: unit 1 appears twice",
    ):
        assert expected in err
    labels = {a.unit.index: a for a in AutoLabel.objects.select_related("unit")}
    assert sorted(labels) == [0, 4]
    assert (labels[4].category, labels[4].source_category, labels[4].detector) == ("texture", "material", False)
    bad = tmp_path / "answers.csv"
    bad.write_text("unit,label\n1,car\n")
    with pytest.raises(CommandError, match="lacks the column"):
        call_command("import_netdissect", str(bad), "--network", "n", "--layer", "conv5")
