"""Network Dissection's automatic labels computed here (`pipeline.tally`), kept as AutoLabel rows of
source "iou" beside the crowd's and beside imported tallies: for activations that came from anywhere
(`dissect --features FILE.npy --probe broden DIR`); a dissected network's are computed by the steps of
its dissection (`tally_stages`) and stored here.

Two streaming passes over the features (the thresholds, then the counts), in batches of images, so no
N x U x h x w array is held; everything is computed before anything is written, and the rows and the
tally files are written together. The tally (counts and thresholds) is kept as an artifact so that
`export --format netdissect` writes NetDissect-Lite's tally.csv."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from django.db import transaction
from django.utils.text import slugify

from annotator.errors import ActionRefused
from annotator.labels import NETDISSECT_CATEGORIES, netdissect_label
from annotator.models import AutoLabel, Layer, Network, Unit
from annotator.services import artifacts
from pipeline import broden, tally

SOURCE = "iou"  # computed here (an imported tally.csv is "netdissect")
BATCH = 16


class AutomaticLabelError(ActionRefused):
    pass


@dataclass
class LayerTally:
    layer: str
    thresholds: np.ndarray
    counts: tally.Tally
    results: list[tally.UnitLabel]
    examples: tally.Examples | None = None


MapSource = Callable[[], Iterator[dict[str, torch.Tensor]]]  # batches of maps (B x U x h x w) per layer


def tally_layers(
    probe: broden.BrodenSet,
    batches: MapSource,
    units: dict[str, int],
    total: dict[str, int],
    given: dict[str, np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[LayerTally]:
    """The passes over `batches()` (called once per pass; maps in index.csv's order): thresholds
    (unless `given`), the counts, then each labelled unit's example images. `total`: values a unit of
    each layer has over the probe set."""
    if given is None:
        sketches = {name: tally.ThresholdSketch(units[name], total[name]) for name in units}
        for batch in batches():
            for name, maps in batch.items():
                sketches[name].add(maps)
            if progress:
                progress(len(next(iter(batch.values()))))
        given = {name: sketch.thresholds() for name, sketch in sketches.items()}
    counts = {name: tally.Tally.empty(units[name], probe.labels, len(probe.categories)) for name in units}
    levels = {name: torch.from_numpy(np.asarray(given[name], dtype=np.float64)) for name in units}
    seen = 0
    for batch in batches():
        size = len(next(iter(batch.values())))
        for name, maps in batch.items():
            for j in range(size):
                counts[name].add(probe, probe.images[seen + j], maps[j], levels[name])
        seen += size
        if progress:
            progress(size)
    out = [LayerTally(name, given[name], counts[name], tally.labels(counts[name], probe)) for name in units]
    examples = {result.layer: tally.Examples(result.results, probe) for result in out}
    seen = 0
    for batch in batches():  # a last pass over the same maps: each unit's best pictures of its label
        size = len(next(iter(batch.values())))
        for name, found in examples.items():
            for j in range(size):
                found.add(probe, seen + j, batch[name][j], levels[name])
        seen += size
    for result in out:
        result.examples = examples[result.layer]
    return out


def given_thresholds(path: Path, units: int) -> np.ndarray:
    """A thresholds file's U levels, refused (naming the file) unless it holds one finite number a unit."""
    try:
        values = np.asarray(np.load(path), dtype=np.float64)
    except (OSError, ValueError) as error:
        raise AutomaticLabelError(f"Cannot read the thresholds file {path}: {error}.") from error
    if values.shape != (units,):
        raise AutomaticLabelError(
            f"The thresholds file {path} holds {values.shape} values; the layer has {units} units, one threshold each."
        )
    if not np.isfinite(values).all():
        raise AutomaticLabelError(f"The thresholds file {path} holds values that are not finite numbers.")
    return values


def features_dissect(
    *,
    features: Path,
    probe_dir: Path,
    name: str,
    layer: str = "features",
    thresholds: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> LayerTally:
    """Label the units of activations made elsewhere: `features` is N x U x h x w (a .npy, read in
    batches from disk), one row per kept row of the probe set's index.csv, in its order."""
    probe = _probe(probe_dir)
    try:
        maps = np.load(features, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise AutomaticLabelError(f"Cannot read the features file {features}: {error}.") from error
    if maps.ndim != 4 or maps.shape[0] != len(probe.images):
        raise AutomaticLabelError(
            f"The features file {features} has shape {maps.shape}; it must be N x U x h x w with N = "
            f"{len(probe.images)}, one row per image of {probe_dir / 'index.csv'} that has a label."
        )
    existing = Network.objects.filter(name=name).first()
    if existing is not None and existing.architecture != "features":
        raise AutomaticLabelError(
            f"A network named {name!r} exists already (not one of features); choose another name."
        )
    units = int(maps.shape[1])

    def batches() -> Iterator[dict[str, torch.Tensor]]:
        for start in range(0, maps.shape[0], BATCH):
            yield {layer: torch.from_numpy(np.array(maps[start : start + BATCH], dtype=np.float32))}

    given = {layer: given_thresholds(thresholds, units)} if thresholds else None
    total = {layer: int(maps.shape[0] * maps.shape[2] * maps.shape[3])}
    try:
        (result,) = tally_layers(probe, batches, {layer: units}, total, given, progress)
    except broden.BrodenError as error:
        raise AutomaticLabelError(str(error)) from error
    with transaction.atomic():
        network, _ = Network.objects.get_or_create(name=name, defaults={"architecture": "features"})
        row, _ = Layer.objects.get_or_create(
            network=network, name=layer, defaults={"order": network.layers.count(), "num_units": units}
        )
        have = set(row.units.values_list("index", flat=True))
        Unit.objects.bulk_create([Unit(layer=row, index=i) for i in range(units) if i not in have])
        labels_store(row, probe, result)
    return result


def labels_store(layer: Layer, probe: broden.BrodenSet, result: LayerTally) -> None:
    """The layer's AutoLabel rows (source "iou") and its tally artifact, replacing earlier ones."""
    units = {u.index: u for u in Unit.objects.filter(layer=layer)}
    AutoLabel.objects.filter(unit__layer=layer, source=SOURCE).delete()
    AutoLabel.objects.bulk_create(
        [
            AutoLabel(
                unit=units[r.unit],
                source=SOURCE,
                label=netdissect_label(r.label),
                category=NETDISSECT_CATEGORIES.get(r.category, ""),
                source_category=r.category,
                score=r.score,
                detector=tally.iou_detector(r.score),
                threshold=float(result.thresholds[r.unit]),
            )
            for r in result.results
            if r.unit in units
        ]
    )
    counts = result.counts
    artifacts.write_arrays(
        tally_path(layer),
        {
            "truth": counts.truth.numpy(),
            "intersect": counts.intersect.numpy(),
            "activation": counts.activation.numpy(),
            "thresholds": np.asarray(result.thresholds),
        },
    )
    artifacts.write_bytes(tally_csv_path(layer), tally.tally_csv(counts, probe, result.results).encode())
    if result.examples is not None:
        examples_store(layer, probe, result.examples)


def tally_path(layer: Layer) -> str:
    return f"automatic/{layer.network_id}-{slugify(layer.network.name)}/{slugify(layer.name)}/tally.npz"


def tally_csv_path(layer: Layer) -> str:
    return tally_path(layer).replace("tally.npz", "tally.csv")


def tally_csv_of(layer: Layer) -> bytes:
    """NetDissect-Lite's tally.csv of the layer's in-house labels (written when they were computed)."""
    if not artifacts.exists(tally_csv_path(layer)):
        raise AutomaticLabelError(
            f"{layer.network.name} / {layer.name} has no automatic labels computed here: run "
            f"`label_automatic {layer.network.name} --probe DIR` (or `dissect --features ... --probe broden DIR`)."
        )
    return artifacts.read_bytes(tally_csv_path(layer))


def probe_read(probe_dir: Path) -> broden.BrodenSet:
    """The Broden-format probe set at `probe_dir`; AutomaticLabelError names what is wrong."""
    return _probe(probe_dir)


def _probe(probe_dir: Path) -> broden.BrodenSet:
    try:
        return broden.read(probe_dir)
    except broden.BrodenError as error:
        raise AutomaticLabelError(str(error)) from error


def examples_store(layer: Layer, probe: broden.BrodenSet, examples: tally.Examples) -> None:
    """Each labelled unit's example pictures: the probe image (where it can be read; grey where not)
    at its segmentation size, lit where the unit's mask is, dimmed elsewhere."""
    from PIL import Image as PILImage

    from pipeline import segmentation

    base = tally_path(layer).replace("tally.npz", "examples")
    rows = {a.unit.index: a for a in AutoLabel.objects.filter(unit__layer=layer, source=SOURCE).select_related("unit")}
    for unit, kept in examples.best.items():
        paths = []
        for rank, (_, index, mask) in enumerate(kept):
            image = probe.images[index]
            try:
                with PILImage.open(probe.root / "images" / image.image) as source:
                    picture = np.asarray(source.convert("RGB").resize((image.width, image.height)))
            except (OSError, ValueError):
                picture = np.full((image.height, image.width, 3), 128, np.uint8)
            shown = segmentation.render(picture, mask, dim=0.25)
            paths.append(artifacts.write_picture(f"{base}/{unit:04d}_{rank}.jpg", shown, quality=90))
        if unit in rows:
            AutoLabel.objects.filter(pk=rows[unit].pk).update(examples=paths)
