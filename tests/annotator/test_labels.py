"""Consensus rules on plain lists (no database)."""

from __future__ import annotations

import pytest

from annotator.labels import Vote, aggregate, normalise

PAPER = 0.75  # the detector threshold of METHOD stage 6


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Car", "car"),
        ("  cars!! ", "car"),
        ("A bunch of cars", "car"),
        ("lots of Trees", "tree"),
        ("the leaves", "leaf"),
        ("people", "person"),
        ("buses", "bus"),
        ("bus", "bus"),
        ("glass", "glass"),
        ("grass", "grass"),
        ("Striped   pattern", "striped pattern"),
        ("water-tower", "water tower"),
        ("skies", "sky"),
        ("cars in the images", "car"),
        ("tennis", "tennis"),
        ("", ""),
    ],
)
def test_normalise(text, key) -> None:
    assert normalise(text) == key


def test_consensus_label_category_precision_and_status() -> None:
    votes = [Vote("Cars", "object", 0.9), Vote("a bunch of car", "object", 0.8), Vote("road", "region", 0.7)]
    result = aggregate(votes, needed=3, threshold=PAPER)
    assert (result.label, result.category, result.status) == ("car", "object", "detector")
    assert result.precision == pytest.approx(0.8)
    assert result.label_agreement == pytest.approx(2 / 3) and result.category_agreement == pytest.approx(2 / 3)
    assert aggregate(votes, needed=3, threshold=0.85).status == "not_detector"


def test_missing_answers_keep_a_unit_pending() -> None:
    result = aggregate([Vote("car", "object", 1.0)], needed=3, threshold=PAPER)
    assert result.status == "pending" and result.label == "car"
    assert aggregate([], needed=3, threshold=PAPER).status == "pending"


def test_a_detector_with_a_split_category_needs_review() -> None:
    split = [Vote("tree", "object", 0.9), Vote("tree", "region", 0.9), Vote("green", "color", 0.9)]
    result = aggregate(split, needed=3, threshold=PAPER)
    assert result.status == "needs_review" and result.flags == ["category split: color 1, object 1, region 1"]
    weak = [Vote(v.description, v.category, 0.2) for v in split]
    assert aggregate(weak, needed=3, threshold=PAPER).status == "not_detector"
    assert aggregate(split, needed=3, threshold=PAPER, category="object").status == "detector"


def test_label_ties_go_to_the_more_precise_answers() -> None:
    votes = [Vote("sky", "region", 0.5), Vote("cloud", "region", 0.9)]
    assert aggregate(votes, needed=2, threshold=PAPER).label == "cloud"
