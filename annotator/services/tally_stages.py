"""Automatic labels of a dissected network as steps of its dissection, so the network runs once.

When a dissection has a Broden probe set (`dissect --network ... --probe broden DIR`), the activation
pass that ranks the top images also keeps each chunk's full maps of its layers (`automatic/maps/`,
float32 on disk, one chunk in memory). Four stages follow the top images' merge, each resumable and
each a no-op for a dissection without a probe set:
1. `probe_maps`: one step per chunk whose maps are not kept (a probe set given to a dissection made
   before, through `label_automatic`): the network runs over that chunk only.
2. `thresholds`: one step, each unit's 0.995 quantile over every kept map (the exact streaming sketch).
3. `tally`: one step per chunk, its counts (`pipeline.tally.Tally`), so Celery workers split the set;
   counts are whole numbers summed in float64, so the merged result is the same for any chunking.
4. `auto_labels`: the chunks' counts merged, the labels, each labelled unit's example pictures (a last
   read of the kept maps), stored as AutoLabel rows and tally files; then the maps are deleted.
A file per finished step marks it done, so an interrupted run redoes only the step it was in."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from django.db import transaction

from annotator.models import Dissection, Image, Layer
from annotator.services import artifacts
from annotator.services.automatic_labels import (
    AutomaticLabelError,
    LayerTally,
    given_thresholds,
    labels_store,
    probe_read,
)
from annotator.services.dissection_setup import (
    DissectionError,
    artifact_root,
    device_of,
    dissection_images,
    layers_of,
    network_for,
    settings_of,
)
from pipeline import activations, broden, images, tally

STAGES = ("probe_maps", "thresholds", "tally", "auto_labels")


# Where the steps keep their results ---------------------------------------------------------------


def _root(dissection: Dissection) -> str:
    return f"{artifact_root(dissection)}/automatic"


def maps_path(dissection: Dissection, index: int) -> str:
    return f"{_root(dissection)}/maps/chunk_{index:05d}.npz"


def counts_path(dissection: Dissection, index: int) -> str:
    return f"{_root(dissection)}/counts/chunk_{index:05d}.npz"


def thresholds_path(dissection: Dissection) -> str:
    return f"{_root(dissection)}/thresholds.npz"


def _done_path(dissection: Dissection) -> str:
    return f"{_root(dissection)}/labelled.json"


def probe_of(dissection: Dissection) -> Path | None:
    """The probe set the dissection's automatic labels are computed on (None: none asked for)."""
    value = dissection.settings.get("probe")
    return Path(value) if value else None


def tally_layers_of(dissection: Dissection) -> list[Layer]:
    chosen = dissection.settings.get("probe_layers")
    return [layer for layer in layers_of(dissection) if not chosen or layer.name in chosen]


def labelled(dissection: Dissection) -> bool:
    """The automatic labels are stored for the probe set and layers the dissection names now."""
    if not artifacts.exists(_done_path(dissection)):
        return False
    done = json.loads(artifacts.read_bytes(_done_path(dissection)))
    wanted = {"probe": dissection.settings.get("probe"), "layers": dissection.settings.get("probe_layers")}
    return {key: done.get(key) for key in wanted} == wanted


def pending(dissection: Dissection, stage: str) -> list[tuple[str, int]]:
    """The steps of one of the four stages still to do, as (step name, id) pairs."""
    if probe_of(dissection) is None or labelled(dissection):
        return []
    chunks = list(dissection.chunks.order_by("index").values_list("index", flat=True))
    if stage == "probe_maps":
        return [(stage, i) for i in chunks if not artifacts.exists(maps_path(dissection, i))]
    if stage == "thresholds":
        return [] if artifacts.exists(thresholds_path(dissection)) else [(stage, dissection.pk)]
    if stage == "tally":
        return [(stage, i) for i in chunks if not artifacts.exists(counts_path(dissection, i))]
    return [(stage, dissection.pk)]


def tally_progress(dissection: Dissection) -> tuple[int, int] | None:
    """(chunks tallied, chunks) of the automatic labels; None without a probe set."""
    if probe_of(dissection) is None:
        return None
    chunks = list(dissection.chunks.values_list("index", flat=True))
    if labelled(dissection):
        return len(chunks), len(chunks)
    return sum(artifacts.exists(counts_path(dissection, i)) for i in chunks), len(chunks)


def probe_set(dissection: Dissection) -> tuple[broden.BrodenSet, dict[str, list[int]]]:
    """The probe set and, per image path, its rows (an image listed twice counts twice, as NetDissect's)."""
    probe_dir = probe_of(dissection)
    if probe_dir is None:
        raise DissectionError(f"The dissection of {dissection.network.name} has no probe set.")
    probe = probe_read(probe_dir)
    rows: dict[str, list[int]] = {}
    for row, image in enumerate(probe.images):
        rows.setdefault(image.image, []).append(row)
    return probe, rows


# The steps ------------------------------------------------------------------------------------------


def maps_write(
    dissection: Dissection, index: int, ids: list[torch.Tensor], maps: dict[str, list[torch.Tensor]]
) -> None:
    """One chunk's maps of the tallied layers, by image id (written by the activation pass, or below)."""
    arrays = {"ids": torch.cat(ids).numpy() if ids else np.zeros(0, np.int64)}
    for layer in tally_layers_of(dissection):
        parts = maps.get(layer.module_name)
        shape = (0, layer.num_units, layer.map_height or 0, layer.map_width or 0)
        arrays[str(layer.pk)] = torch.cat(parts).numpy() if parts else np.zeros(shape, np.float32)
    artifacts.write_arrays(maps_path(dissection, index), arrays)


def probe_maps_run(dissection_id: int, index: int) -> None:
    """The network over one chunk's images, keeping the tallied layers' full maps (a dissection whose
    activation pass ran before it had a probe set)."""
    dissection = Dissection.objects.select_related("network", "image_set").get(pk=dissection_id)
    if artifacts.exists(maps_path(dissection, index)):
        return
    chunk = dissection.chunks.get(index=index)
    settings = settings_of(dissection)
    loaded = network_for(settings)
    modules = [layer.module_name for layer in tally_layers_of(dissection)]
    entries = dissection_images(dissection, chunk.first_image, chunk.image_count)
    ids: list[torch.Tensor] = []
    maps: dict[str, list[torch.Tensor]] = {name: [] for name in modules}
    with activations.recording(loaded.model, modules) as records, torch.inference_mode():
        for start in range(0, len(entries), settings.batch_size):
            part = entries[start : start + settings.batch_size]
            batch = images.load_batch(dissection.image_set.root, [p for _, p in part], loaded.preprocessing)
            if not batch.indices:
                continue
            activations.run(loaded.model, batch.tensor.to(activations.model_device(loaded.model)), records)
            ids.append(torch.tensor([part[i][0] for i in batch.indices], dtype=torch.long))
            for name in modules:
                maps[name].append(records[name].float().cpu())
    maps_write(dissection, index, ids, maps)


def _chunk_rows(dissection: Dissection, index: int, rows: dict[str, list[int]]) -> list[list[int]]:
    """The probe rows of each image of one chunk's kept maps, in their order."""
    ids = artifacts.read_arrays(maps_path(dissection, index), ["ids"])["ids"]
    paths = dict(Image.objects.filter(id__in=ids.tolist()).values_list("id", "path"))
    return [rows.get(paths[int(i)], []) for i in ids]


def _chunk_maps(
    dissection: Dissection, index: int, rows: dict[str, list[int]]
) -> tuple[list[list[int]], dict[int, np.ndarray]]:
    """(probe rows of each image, {layer pk: its maps}) of one chunk's kept maps."""
    stored = artifacts.read_arrays(maps_path(dissection, index))
    return _chunk_rows(dissection, index, rows), {int(key): value for key, value in stored.items() if key != "ids"}


def thresholds_run(dissection_id: int, _ident: int = 0) -> None:
    """Each unit's activation level at quantile 0.995 over the maps of every probe image the
    dissection could read (those it could not are left out of the tally, and named)."""
    dissection = Dissection.objects.select_related("network").get(pk=dissection_id)
    if artifacts.exists(thresholds_path(dissection)):
        return
    probe, rows = probe_set(dissection)
    chunks = list(dissection.chunks.order_by("index").values_list("index", flat=True))
    seen: set[int] = set()
    for index in chunks:
        seen.update(row for listed in _chunk_rows(dissection, index, rows) for row in listed)
    if not seen:
        raise DissectionError(f"No image of {probe.root / 'index.csv'} could be read by the dissection.")
    skipped = np.array([row for row in range(len(probe.images)) if row not in seen], dtype=np.int64)
    layers = tally_layers_of(dissection)
    given = dissection.settings.get("probe_thresholds")
    if given is not None:  # the given ones (`probe_attach` checked them against the one layer labelled)
        arrays = {str(layer.pk): np.asarray(given, dtype=np.float64) for layer in layers}
    else:
        arrays = {str(pk): levels for pk, levels in _quantiles(dissection, chunks, rows, layers, len(seen)).items()}
    artifacts.write_arrays(thresholds_path(dissection), {**arrays, "skipped": skipped})


def _quantiles(
    dissection: Dissection, chunks: list[int], rows: dict[str, list[int]], layers: list[Layer], images: int
) -> dict[int, np.ndarray]:
    """Each layer's 0.995 quantile per unit over every kept map, in one pass over the chunks (a chunk
    at once: one top-k over its values)."""
    sketches = {
        layer.pk: tally.ThresholdSketch(layer.num_units, images * (layer.map_height or 0) * (layer.map_width or 0))
        for layer in layers
    }
    for index in chunks:
        image_rows, maps = _chunk_maps(dissection, index, rows)
        repeat = [j for j, listed in enumerate(image_rows) for _ in listed]  # one map per probe row
        for pk, sketch in sketches.items():
            if repeat:
                sketch.add(torch.from_numpy(maps[pk][repeat]))
    return {pk: sketch.thresholds() for pk, sketch in sketches.items()}


def _levels(dissection: Dissection) -> dict[int, torch.Tensor]:
    stored = artifacts.read_arrays(thresholds_path(dissection))
    return {int(key): torch.from_numpy(value) for key, value in stored.items() if key != "skipped"}


def skipped_rows(dissection: Dissection) -> list[int]:
    """The probe set's rows (0-based) left out of the tally: images the dissection could not read."""
    if not artifacts.exists(thresholds_path(dissection)):
        return []
    return artifacts.read_arrays(thresholds_path(dissection), ["skipped"])["skipped"].tolist()


def tally_chunk_run(dissection_id: int, index: int) -> None:
    """One chunk's counts (intersections, label areas, activation areas per category) for every layer."""
    dissection = Dissection.objects.select_related("network").get(pk=dissection_id)
    if artifacts.exists(counts_path(dissection, index)):
        return
    device = device_of(settings_of(dissection))  # the network's device: the IoU work runs there
    probe, rows = probe_set(dissection)
    levels = {pk: level.to(device) for pk, level in _levels(dissection).items()}
    layers = tally_layers_of(dissection)
    counts = {layer.pk: tally.Tally.empty(layer.num_units, probe.labels, len(probe.categories)) for layer in layers}
    image_rows, maps = _chunk_maps(dissection, index, rows)
    try:
        for j, listed in enumerate(image_rows):
            for pk, count in counts.items():
                on_device = torch.from_numpy(maps[pk][j]).to(device)
                for row in listed:
                    count.add(probe, probe.images[row], on_device, levels[pk])
    except broden.BrodenError as error:
        raise DissectionError(str(error)) from error
    arrays = {}
    for pk, count in counts.items():
        arrays.update(
            {f"{pk}.truth": count.truth.numpy(), f"{pk}.intersect": count.intersect.numpy()}
            | {f"{pk}.activation": count.activation.numpy()}
        )
    artifacts.write_arrays(counts_path(dissection, index), arrays)


def auto_labels_run(dissection_id: int, _ident: int = 0) -> None:
    """Merge the chunks' counts into each layer's labels, find their example pictures, store them."""
    dissection = Dissection.objects.select_related("network").get(pk=dissection_id)
    if labelled(dissection):
        return
    probe, rows = probe_set(dissection)
    levels = _levels(dissection)
    layers = tally_layers_of(dissection)
    counts = {layer.pk: tally.Tally.empty(layer.num_units, probe.labels, len(probe.categories)) for layer in layers}
    chunks = list(dissection.chunks.order_by("index").values_list("index", flat=True))
    for index in chunks:
        stored = artifacts.read_arrays(counts_path(dissection, index))
        for pk, count in counts.items():
            count.merge(
                tally.Tally(*(torch.from_numpy(stored[f"{pk}.{key}"]) for key in ("truth", "intersect", "activation")))
            )
    results = {
        layer.pk: LayerTally(
            layer.name, levels[layer.pk].numpy(), counts[layer.pk], tally.labels(counts[layer.pk], probe)
        )
        for layer in layers
    }
    examples = {pk: tally.Examples(result.results, probe) for pk, result in results.items()}
    for index in chunks:  # the last read of the kept maps: each unit's best pictures of its label
        image_rows, maps = _chunk_maps(dissection, index, rows)
        for j, listed in enumerate(image_rows):
            for row in listed:
                for pk, found in examples.items():
                    found.add(probe, row, torch.from_numpy(maps[pk][j]), levels[pk])
    with transaction.atomic():
        for layer in layers:
            results[layer.pk].examples = examples[layer.pk]
            labels_store(layer, probe, results[layer.pk])
    wanted = {"probe": dissection.settings.get("probe"), "layers": dissection.settings.get("probe_layers")}
    artifacts.write_bytes(_done_path(dissection), json.dumps(wanted).encode())
    artifacts.remove_tree(f"{_root(dissection)}/maps")  # the thresholds and counts stay (small)


STEPS: dict[str, Callable[[int, int], None]] = {
    "probe_maps": probe_maps_run,
    "thresholds": thresholds_run,
    "tally": tally_chunk_run,
    "auto_labels": auto_labels_run,
}


# Asking for labels --------------------------------------------------------------------------------------


def probe_attach(
    dissection: Dissection, probe_dir: Path, layers: list[str] | None = None, thresholds: Path | None = None
) -> None:
    """Name the probe set (and layers, and given thresholds) the dissection's automatic labels are
    computed on. Another probe set, other layers or other thresholds than before start the automatic
    labels afresh (the kept maps stay if the layers are the same). Given thresholds (one layer's, to
    reproduce a published dissection) replace the 0.995 quantiles."""
    probe = probe_read(probe_dir)
    dissected = layers_of(dissection)
    known = [layer.name for layer in dissected]
    unknown = [name for name in layers or [] if name not in known]
    if unknown:
        raise AutomaticLabelError(
            f"{dissection.network.name} has no layer {', '.join(unknown)} dissected (it has {', '.join(known)})."
        )
    levels = None
    if thresholds is not None:
        tallied = [layer for layer in dissected if not layers or layer.name in layers]
        if len(tallied) != 1:
            raise AutomaticLabelError(
                f"{thresholds} gives one layer's thresholds, and {len(tallied)} layers are labelled "
                f"({', '.join(layer.name for layer in tallied)}): name one with --layers."
            )
        levels = given_thresholds(thresholds, tallied[0].num_units).tolist()
    if Path(dissection.image_set.root).resolve() != (probe.root / "images").resolve():
        raise AutomaticLabelError(
            f"The dissection of {dissection.network.name} read {dissection.image_set.root}, not the probe set's "
            f"{probe.root / 'images'}: dissect the probe set's images first."
        )
    have = {path for _, path in dissection_images(dissection)}
    missing = [image for image in probe.images if image.image not in have]
    if missing:
        raise AutomaticLabelError(
            f"{len(missing)} image(s) of {probe.root / 'index.csv'} are not images of the dissection, "
            f"the first at row {missing[0].row} ({missing[0].image})."
        )
    wanted = {
        "probe": str(probe.root.resolve()),
        "probe_layers": sorted(layers) if layers else None,
        "probe_thresholds": levels,
    }
    stored = {key: dissection.settings.get(key) for key in wanted}
    if stored == wanted:
        return
    for folder in ("counts", *(() if stored["probe_layers"] == wanted["probe_layers"] else ("maps",))):
        artifacts.remove_tree(f"{_root(dissection)}/{folder}")
    for path in (thresholds_path(dissection), _done_path(dissection)):
        artifacts.remove(path)
    Dissection.objects.filter(pk=dissection.pk).update(settings={**dissection.settings, **wanted})
    dissection.refresh_from_db()


def dissection_label_automatic(
    *,
    network: str,
    probe_dir: Path,
    layers: list[str] | None = None,
    thresholds: Path | None = None,
    progress: Callable[[str, int, int], Callable[[int], None]] | None = None,
) -> Dissection:
    """`label_automatic`: the four stages' steps run here, each stage's remaining steps in turn
    (`progress(stage, total, done)` gives a callback per step). Nothing is redone that is stored."""
    dissection = Dissection.objects.select_related("network", "image_set").filter(network__name=network).first()
    if dissection is None:
        raise AutomaticLabelError(f"No dissection of a network named {network!r}: run `dissect` first.")
    if dissection.chunks.filter(done=False).exists():
        raise AutomaticLabelError(
            f"The dissection of {network} has not passed all its images through the network yet: finish `dissect` "
            f"first (with --probe broden DIR it labels them itself)."
        )
    probe_attach(dissection, probe_dir, layers, thresholds)
    for stage in STAGES:
        steps = pending(dissection, stage)
        total = dissection.chunks.count() if stage in ("probe_maps", "tally") else 1
        step_done = progress(stage, total, total - len(steps)) if progress else None
        for name, ident in steps:
            try:
                STEPS[name](dissection.pk, ident)
            except DissectionError as error:
                raise AutomaticLabelError(str(error)) from error
            if step_done:
                step_done(1)
    return dissection
