"""Network Dissection's tally (pipeline/tally.py) against an independent computation written from
NETDISSECT.md in plain loops, on a generated Broden-format set with planted units; and the Broden
reader's errors, each naming its file and row."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline import broden, tally
from tests.pipeline.broden_set import UNITS, make


def bilinear(m: np.ndarray, height: int, width: int) -> np.ndarray:
    """Half-pixel centres, edge clamping, float64."""
    h, w = m.shape

    def axis(size: int, source: int):
        pos = np.clip((np.arange(size) + 0.5) * source / size - 0.5, 0, None)
        low = np.minimum(np.floor(pos).astype(int), source - 1)
        return low, np.minimum(low + 1, source - 1), pos - low

    y0, y1, fy = axis(height, h)
    x0, x1, fx = axis(width, w)
    top = m[y0][:, x0] * (1 - fx) + m[y0][:, x1] * fx
    bottom = m[y1][:, x0] * (1 - fx) + m[y1][:, x1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


def independent(probe: broden.BrodenSet, features: np.ndarray, thresholds: np.ndarray):
    """The tally in loops: dictionaries of counts, one image, unit and pixel at a time."""
    categories = len(probe.categories)
    truth, inter, act = {}, {}, {}
    for i, image in enumerate(probe.images):
        layers = probe.pixel_layers(image)
        scalars = [s for values in image.scalars for s in values]
        for value in layers.flatten():
            if value:
                truth[value] = truth.get(value, 0) + 1
        for s in scalars:
            truth[s] = truth.get(s, 0) + image.height * image.width
        for u in range(features.shape[1]):
            if not features[i, u].max() > thresholds[u]:
                continue
            mask = bilinear(features[i, u].astype(np.float64), image.height, image.width) > thresholds[u]
            hits = {}
            for layer in layers:
                for value in layer[mask]:
                    if value:
                        hits[value] = hits.get(value, 0) + 1
            for label, n in hits.items():
                inter[(u, label)] = inter.get((u, label), 0) + n
            for s in scalars:
                inter[(u, s)] = inter.get((u, s), 0) + mask.sum()
            gated = {int(probe.primary[label]) for label in hits} | {int(probe.primary[s]) for s in scalars}
            for c in gated:
                act[(u, c)] = act.get((u, c), 0) + mask.sum()
    results = []
    for u in range(features.shape[1]):
        best = []
        for c in range(categories):
            scores = {
                label: inter.get((u, label), 0)
                / (act.get((u, c), 0) + truth.get(label, 0) - inter.get((u, label), 0) + 1e-10)
                for label in range(1, probe.labels)
                if probe.primary[label] == c
            }
            top = max(scores.values(), default=0)
            best.append((min(k for k, v in scores.items() if v == top) if top > 0 else 0, top))
        c = max(range(categories), key=lambda k: (best[k][1], k))
        results.append((probe.categories[c], probe.names[best[c][0]], best[c][1]))
    return results


@pytest.fixture(scope="module")
def probe_set(tmp_path_factory):
    root, features = make(tmp_path_factory.mktemp("broden"))
    return broden.read(root), features


def run(probe, features, thresholds=None, chunks=1):
    maps = torch.from_numpy(features)
    if thresholds is None:
        sketches = []
        for part in np.array_split(np.arange(len(features)), chunks):
            sketch = tally.ThresholdSketch(UNITS, features.shape[0] * 49)
            for start in range(0, len(part), 5):
                sketch.add(maps[part[start : start + 5]])
            sketches.append(sketch)
        for other in sketches[1:]:
            sketches[0].merge(other)
        thresholds = sketches[0].thresholds()
    counts = []
    for part in np.array_split(np.arange(len(features)), chunks):
        counted = tally.Tally.empty(UNITS, probe.labels, len(probe.categories))
        for i in part:
            counted.add(probe, probe.images[i], maps[i], torch.from_numpy(np.asarray(thresholds)))
        counts.append(counted)
    for other in counts[1:]:
        counts[0].merge(other)
    return thresholds, counts[0], tally.labels(counts[0], probe)


def test_the_reader_keeps_the_used_categories_in_order_and_each_labels_primary_one(probe_set) -> None:
    probe, features = probe_set
    assert probe.categories == ["object", "part", "scene", "texture", "color"], "material is not used"
    assert len(probe.images) == len(features) == 24, "the row with no used label is left out"
    assert probe.names[300] == "window" and probe.names[0] == ""
    assert probe.categories[probe.primary[3]] == "object", "door's coverage is highest in object"
    assert probe.primary[0] == len(probe.categories) - 1, "no coverage at all goes to the last category"
    layers = probe.pixel_layers(probe.images[1])  # an image with a car, and windows on it
    assert layers.shape == (4, 30, 21) and 300 in layers, "object, two part layers, colour; 300 needs green"


def test_thresholds_are_the_exact_quantile_of_all_raw_values(probe_set) -> None:
    probe, features = probe_set
    thresholds, _, _ = run(probe, features)
    expected = [np.quantile(features[:, u].astype(np.float64).ravel(), 994 / 999, method="hazen") for u in range(UNITS)]
    assert np.allclose(thresholds, expected, rtol=0, atol=1e-12)


def test_labels_and_ious_equal_an_independent_computation_and_chunks_merge_exactly(probe_set) -> None:
    probe, features = probe_set
    thresholds, counted, results = run(probe, features)
    expected = independent(probe, features, thresholds)
    for result, (category, label, score) in zip(results, expected, strict=True):
        assert (result.category, result.label) == (category, label)
        assert result.score == pytest.approx(score, rel=1e-9, abs=1e-12)
    assert results[0].label == "car" and results[0].detector, "the unit copying the car's mask"
    assert results[1].category == "part" and results[1].label == "wheel", "the unit copying a part"
    assert results[2].label == "" and results[2].score == 0 and results[2].category == "color", "dead"
    assert not results[3].detector, "a constant unit never exceeds its own quantile"
    _, in_three, again = run(probe, features, chunks=3)
    assert torch.equal(in_three.intersect, counted.intersect) and torch.equal(in_three.truth, counted.truth)
    assert [r.score for r in again] == [r.score for r in results], "identical with 1 and with 3 chunks"


def test_given_thresholds_are_used_as_they_are(probe_set) -> None:
    probe, features = probe_set
    given = np.array([1.0, 1.0, 0.5, 1.0, 10.0])
    _, _, results = run(probe, features, thresholds=given)
    expected = independent(probe, features, given)
    assert [(r.category, r.label) for r in results] == [(c, n) for c, n, _ in expected]
    assert results[4].score == 0, "noise never above 10"


def test_tally_csv_has_netdissects_columns_order_and_formatting(probe_set) -> None:
    probe, features = probe_set
    _, counted, results = run(probe, features)
    text = tally.tally_csv(counted, probe, results)
    lines = text.split("\r\n")
    assert lines[0].startswith("unit,category,label,score,object-label,object-truth,object-activation")
    assert lines[0].endswith("color-label,color-truth,color-activation,color-intersect,color-iou")
    first = lines[1].split(",")
    best = max(results, key=lambda r: (r.score, r.unit))
    assert first[:3] == [str(best.unit + 1), best.category, best.label] and float(first[3]) == best.score
    assert first[3] == repr(best.score), "an IoU as Python writes it"
    scores = [float(line.split(",")[3]) for line in lines[1:] if line]
    assert scores == sorted(scores, reverse=True)
    assert ".0," in lines[1], "counts are written as Python floats"


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda root: (root / "label.csv").unlink(), "The probe set has no label.csv"),
        (lambda root: (root / "c_part.csv").write_text("code,number\n"), "c_part.csv has no column coverage"),
        (
            lambda root: Image.new("RGB", (5, 5)).save(root / "images" / "000_object.png"),
            "000_object.png is 5 x 5, not the row's segmentation size",
        ),
        (
            lambda root: Image.new("RGB", (32, 32), (9, 0, 0)).save(root / "images" / "000_object.png"),
            "holds label 9, which label.csv does not have",
        ),
        (
            lambda root: (root / "index.csv").write_text(
                (root / "index.csv")
                .read_text()
                .replace("\n000.jpg,train,128,128,32,32", "\n000.jpg,train,128,128,x,32")
            ),
            "index.csv row 2 sh: 'x' is not a whole number",
        ),
        (
            lambda root: (root / "index.csv").write_text(
                (root / "index.csv").read_text().replace("_material.png,6,", "_material.png,77,", 1)
            ),
            "scene label 77 is not in label.csv",
        ),
    ],
)
def test_bad_probe_sets_name_the_file_and_row(tmp_path, break_it, message) -> None:
    root, _ = make(tmp_path / "set", images=4)
    break_it(root)
    with pytest.raises(broden.BrodenError, match=message.replace("(", r"\(")):
        probe = broden.read(root)
        for image in probe.images:
            probe.pixel_layers(image)


def test_each_units_examples_are_where_its_mask_meets_its_label(probe_set) -> None:
    probe, features = probe_set
    thresholds, _, results = run(probe, features)
    examples = tally.Examples(results, probe)
    for i in range(len(features)):
        examples.add(probe, i, torch.from_numpy(features[i]), torch.from_numpy(thresholds))
    car = examples.best[0]
    assert results[0].label == "car" and 1 <= len(car) <= 3
    for hits, index, mask in car:
        layers = probe.pixel_layers(probe.images[index])
        assert hits == float((mask & (layers == 2).any(axis=0)).sum()) > 0, "counted on the car's own pixels"
    assert [h for h, _, _ in car] == sorted((h for h, _, _ in car), reverse=True)
    assert 2 not in examples.best, "a dead unit has no label and no examples"
