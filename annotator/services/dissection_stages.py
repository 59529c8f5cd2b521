"""The four resumable steps of a dissection (METHOD stages 2-4). Each returns at once when its
result is already stored, so a re-run, a resumed run or a redelivered task never redoes work."""

from __future__ import annotations

import logging
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from django.db import transaction
from django.utils.text import slugify

from annotator.models import (
    ActivationChunk,
    Dissection,
    Image,
    ImageSweep,
    ReceptiveField,
    Segmentation,
    TopImage,
    Unit,
)
from annotator.services import artifacts, tally_stages
from annotator.services.dissection_setup import (
    DissectionError,
    artifact_root,
    dissection_images,
    geometry_of,
    layers_of,
    network_for,
    settings_of,
)
from annotator.services.probe import probe_chunk_write
from annotator.services.tally_stages import probe_of, tally_layers_of
from pipeline import activations, images, receptive_field, segmentation

logger = logging.getLogger(__name__)
Stage = Dissection.Stage


# Stage 1-2: activations and top images --------------------------------------------------------


def activation_chunk_run(dissection_id: int, index: int) -> None:
    """Top-K of every unit over one chunk of images, saved to disk; unreadable images are recorded."""
    chunk = ActivationChunk.objects.select_related("dissection__network", "dissection__image_set").get(
        dissection_id=dissection_id, index=index
    )
    if chunk.done:
        return
    dissection = chunk.dissection
    settings = settings_of(dissection)
    loaded = network_for(settings)
    layers = layers_of(dissection)
    entries = dissection_images(dissection, chunk.first_image, chunk.image_count)
    failures: dict[int, str] = {}

    def batches():
        for start in range(0, len(entries), settings.batch_size):
            part = entries[start : start + settings.batch_size]
            batch = images.load_batch(dissection.image_set.root, [p for _, p in part], loaded.preprocessing)
            failures.update({part[i][0]: reason for i, reason in batch.failures.items()})
            yield torch.tensor([part[i][0] for i in batch.indices], dtype=torch.long), batch.tensor

    probe: dict[str, list[tuple]] = {}
    # With a Broden probe set, the tallied layers' full maps too: the automatic labels need no second run.
    maps: dict[str, list[torch.Tensor]] | None = (
        {layer.module_name: [] for layer in tally_layers_of(dissection)} if probe_of(dissection) else None
    )
    tops = activations.top_k_pass(
        loaded.model, [layer.module_name for layer in layers], batches(), settings.top_k, probe=probe, maps=maps
    )
    probe_chunk_write(dissection, index, layers, probe)  # every image's scores, for checks beyond the top
    if maps is not None and not tally_stages.labelled(dissection):
        first = probe.get(layers[0].module_name, [])
        tally_stages.maps_write(dissection, index, [part[0] for part in first], maps)
    arrays = {}
    for layer in layers:
        top = tops.get(layer.module_name) or activations.TopK.empty(layer.num_units, settings.top_k)
        arrays.update({f"{layer.pk}.{key}": value for key, value in top.to_numpy().items()})
    artifacts.write_arrays(f"{artifact_root(dissection)}/activations/chunk_{index:05d}.npz", arrays)
    ok_ids = [image_id for image_id, _ in entries if image_id not in failures]
    with transaction.atomic():
        Image.objects.filter(id__in=ok_ids).update(status=Image.Status.OK, error="")
        for image_id, reason in failures.items():
            Image.objects.filter(id=image_id).update(status=Image.Status.UNREADABLE, error=reason[:2000])
        ActivationChunk.objects.filter(pk=chunk.pk).update(done=True)
    for image_id, reason in failures.items():
        logger.warning("Skipped unreadable image %s: %s", image_id, reason)


def top_images_merge(dissection_id: int) -> None:
    """Fold the chunks' top-K into each unit's global top-K and store it; plan one sweep per unique image."""
    dissection = Dissection.objects.select_related("network").get(pk=dissection_id)
    if dissection.stage != Stage.MERGING or dissection.sweeps.exists():
        return
    settings = settings_of(dissection)
    rf_images = settings.rf_image_count
    layers = layers_of(dissection)
    merged = {layer.pk: activations.TopK.empty(layer.num_units, settings.top_k) for layer in layers}
    for chunk in dissection.chunks.order_by("index"):
        arrays = artifacts.read_arrays(f"{artifact_root(dissection)}/activations/chunk_{chunk.index:05d}.npz")
        for layer in layers:
            merged[layer.pk].merge(
                activations.TopK.from_numpy(
                    {key: arrays[f"{layer.pk}.{key}"] for key in ("scores", "images", "argmax")}
                )
            )
    rows: list[TopImage] = []
    occluded: dict[int, bool] = {}
    for layer in layers:
        unit_ids = dict(layer.units.values_list("index", "id"))
        top, width = merged[layer.pk], geometry_of(layer).width
        for unit in range(layer.num_units):
            for rank in range(top.k):
                image_id, score = int(top.images[unit, rank]), float(top.scores[unit, rank])
                if image_id < 0 or not np.isfinite(score):
                    break
                y, x = divmod(int(top.argmax[unit, rank]), width)
                rows.append(
                    TopImage(unit_id=unit_ids[unit], image_id=image_id, rank=rank, score=score, argmax_y=y, argmax_x=x)
                )
                occluded[image_id] = occluded.get(image_id, False) or rank < rf_images
    if not rows:
        raise DissectionError("No readable images: every file under the image folder failed to decode.")
    with transaction.atomic():
        # The lock makes a concurrent duplicate of this task wait, then see the rows and stop.
        Dissection.objects.select_for_update().get(pk=dissection_id)
        if dissection.sweeps.exists():
            return
        TopImage.objects.bulk_create(rows, batch_size=5000)
        ImageSweep.objects.bulk_create(
            [ImageSweep(dissection=dissection, image_id=i, occluded=o) for i, o in sorted(occluded.items())],
            batch_size=5000,
        )


# Stage 3: one occlusion sweep per unique top image ---------------------------------------------


def _sweep_path(dissection: Dissection, image_id: int) -> str:
    return f"{artifact_root(dissection)}/sweeps/{image_id}.npz"


def image_sweep_run(dissection_id: int, image_id: int) -> None:
    """Feature maps of the image for every unit that ranks it, and one occlusion sweep for those
    units that use it for their RF."""
    sweep = ImageSweep.objects.select_related("dissection__network", "dissection__image_set", "image").get(
        dissection_id=dissection_id, image_id=image_id
    )
    if sweep.done:
        return
    started = time.perf_counter()
    dissection = sweep.dissection
    settings = settings_of(dissection)
    rf_images = settings.rf_image_count
    loaded = network_for(settings)
    layers = {layer.pk: layer for layer in layers_of(dissection)}
    tops = (
        TopImage.objects.filter(image_id=image_id, unit__layer__in=list(layers))
        .values_list("unit__layer_id", "unit__index", "rank", "argmax_y", "argmax_x")
        .order_by("unit__layer_id", "unit__index")
    )
    try:
        picture = images.crop_square(images.load_rgb(Path(dissection.image_set.root) / sweep.image.path), settings.size)
    except (images.UnreadableImage, OSError) as exc:
        raise DissectionError(f"Image {sweep.image.path} can no longer be read: {exc}") from exc
    tensor = images.to_tensor(picture, loaded.preprocessing)
    by_layer: dict[int, list[tuple[int, int, int, int]]] = {}
    for layer_id, unit, rank, y, x in tops:
        by_layer.setdefault(layer_id, []).append((unit, rank, y, x))
    modules = [layers[layer_id].module_name for layer_id in by_layer]
    maps = activations.feature_maps(loaded.model, modules, tensor[None])
    arrays: dict[str, np.ndarray] = {}
    targets = {}
    for layer_id, entries in by_layer.items():
        module = layers[layer_id].module_name
        units = np.array([e[0] for e in entries])
        arrays[f"{layer_id}.units"] = units
        arrays[f"{layer_id}.maps"] = maps[module][0, units].numpy()
        chosen = [e for e in entries if e[1] < rf_images]
        if chosen:
            arrays[f"{layer_id}.rf_units"] = np.array([e[0] for e in chosen])
            targets[module] = receptive_field.Targets(*(torch.tensor([e[i] for e in chosen]) for i in (0, 2, 3)))
    if targets:
        occlusion = settings.occlusion
        seed = settings.seed * 1_000_003 + zlib.crc32(sweep.image.path.encode())
        grids = receptive_field.occlusion_sweep(loaded.model, tensor, targets, loaded.preprocessing, occlusion, seed)
        module_to_layer = {layers[lid].module_name: lid for lid in by_layer}
        for module, grid in grids.items():
            arrays[f"{module_to_layer[module]}.disc"] = grid.astype(np.float32)
    artifacts.write_arrays(_sweep_path(dissection, image_id), arrays)
    ImageSweep.objects.filter(pk=sweep.pk).update(done=True, seconds=time.perf_counter() - started)


# Stage 4: receptive field and segmentation of each unit ----------------------------------------


def unit_segment(dissection_id: int, unit_id: int) -> None:
    """Average the unit's re-centred discrepancy maps into its RF, then segment and render its top images."""
    if ReceptiveField.objects.filter(unit_id=unit_id).exists():
        return
    dissection = Dissection.objects.select_related("network", "image_set").get(pk=dissection_id)
    unit = Unit.objects.select_related("layer").get(pk=unit_id)
    settings = settings_of(dissection)
    rf_images, occlusion = settings.rf_image_count, settings.occlusion
    geometry = geometry_of(unit.layer)
    size = settings.size
    tops = list(unit.top_images.select_related("image").order_by("rank"))
    key = unit.layer_id
    per_image = []
    discs: list[np.ndarray] = []
    centres: list[tuple[int, int]] = []
    for top in tops:
        # Only this layer's members of the image's sweep file: it also holds every other unit's data.
        wanted = [f"{key}.units", f"{key}.maps"] + ([f"{key}.rf_units", f"{key}.disc"] if top.rank < rf_images else [])
        arrays = artifacts.read_arrays(_sweep_path(dissection, top.image_id), wanted)
        row = int(np.flatnonzero(arrays[f"{key}.units"] == unit.index)[0])
        per_image.append(arrays[f"{key}.maps"][row])
        if top.rank < rf_images:
            rf_row = int(np.flatnonzero(arrays[f"{key}.rf_units"] == unit.index)[0])
            discs.append(receptive_field.discrepancy_to_pixels(arrays[f"{key}.disc"][rf_row][None], size, occlusion)[0])
            cy, cx = geometry.centre(top.argmax_y, top.argmax_x)
            centres.append((int(round(cy)), int(round(cx))))
    base = f"{artifact_root(dissection)}/units/{slugify(unit.layer.name)}/{unit.index:04d}"
    rf = receptive_field.average_rf(discs, centres) if discs else np.zeros((2 * size - 1,) * 2, np.float32)
    kernel = segmentation.rf_kernel(rf, geometry, settings.rf_threshold)
    seg_rows = []
    for top, fmap in zip(tops, per_image, strict=True):
        mask = segmentation.segment(fmap, kernel, geometry, size, settings.activation_threshold)
        source = Path(dissection.image_set.root) / top.image.path
        # The same square the network saw, at the size annotators see it (not the network's, 64 px for the demo).
        picture = np.asarray(images.crop_square(images.load_rgb(source), segmentation.SHOWN_PX))
        shown = segmentation.render(picture, segmentation.resize_mask(mask, segmentation.SHOWN_PX), settings.dim)
        mask_path = artifacts.write_picture(f"{base}/mask_{top.rank:03d}.png", (mask * 255).astype(np.uint8))
        shown_path = artifacts.write_picture(f"{base}/shown_{top.rank:03d}.jpg", shown, quality=90)
        seg_rows.append(
            Segmentation(top_image=top, mask_path=mask_path, rendered_path=shown_path, coverage=float(mask.mean()))
        )
    map_path = artifacts.write_npy(f"{base}/rf.npy", rf)
    picture_path = artifacts.write_picture(f"{base}/rf.png", segmentation.render_rf(rf))
    with transaction.atomic():
        if ReceptiveField.objects.select_for_update().filter(unit_id=unit_id).exists():
            return
        Segmentation.objects.filter(top_image__unit_id=unit_id).delete()
        Segmentation.objects.bulk_create(seg_rows)
        ReceptiveField.objects.create(
            unit_id=unit_id,
            images_used=len(discs),
            map_path=map_path,
            picture_path=picture_path,
            empirical_px=receptive_field.rf_size_px(rf, settings.rf_threshold),
        )
