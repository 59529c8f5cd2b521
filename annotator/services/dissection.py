"""Dissection as resumable steps over the database: start, activation chunks, merge, sweeps, units.

Every step checks whether its result is already stored and returns at once if so; the in-process
runner (`dissection_run`) and the Celery tasks call the same steps, so both give the same result.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from annotator.models import (
    ActivationChunk,
    Dissection,
    Image,
    ImageSet,
    ImageSweep,
    Layer,
    Network,
    ReceptiveField,
    Segmentation,
    TopImage,
    Unit,
)
from annotator.services import artifacts
from pipeline import activations, images, receptive_field, segmentation
from pipeline.networks import (
    BUILTINS,
    LayerGeometry,
    LoadedNetwork,
    NetworkError,
    Preprocessing,
    build_network,
    layer_geometry,
    resolve_layers,
)

logger = logging.getLogger(__name__)
Stage = Dissection.Stage


class DissectionError(ValueError):
    """A dissection that cannot start or go on; the message says what to change."""


@dataclass
class DissectionSettings:
    """Everything that defines a dissection's result (plus how fast it runs: batch, device, chunk)."""

    network: str
    layers: list[str]
    images: str
    weights: str = ""
    top_k: int = 60
    input_size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    occluder_size: int = 11
    occluder_stride: int = 3
    rf_images: int | None = None  # top images per unit used for the RF; None: all top_k
    spread: bool = True
    activation_threshold: float = 0.5
    rf_threshold: float = 0.5
    dim: float = 0.2
    seed: int = 0
    batch_size: int = 64
    device: str = "cpu"
    chunk_size: int = 500
    speed_only: tuple[str, ...] = field(default=("batch_size", "device"), repr=False)

    def result_defining(self) -> dict:
        data = asdict(self)
        for key in (*self.speed_only, "speed_only"):
            data.pop(key)
        return data


def dissection_start(settings: DissectionSettings, name: str | None = None) -> Dissection:
    """Create the records of a new dissection, or return the existing one with the same settings.

    A name already used with other settings is refused with the differences listed, so a re-run
    resumes only the work it describes.
    """
    root = Path(settings.images).expanduser().resolve()
    if not root.is_dir():
        raise DissectionError(f"Image folder not found: {settings.images}")
    settings.images = str(root)
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise DissectionError("--device cuda was asked for, but this machine's torch sees no CUDA device.")
    name = name or settings.network
    if settings.weights:
        settings.weights = str(Path(settings.weights).expanduser().resolve())
    wanted = settings.result_defining()
    existing = Dissection.objects.filter(network__name=name).select_related("network").first()
    if existing is not None:
        stored = dict(existing.settings)
        if {k: stored.get(k) for k in wanted} != wanted:
            diffs = [f"{k}: stored {stored.get(k)!r}, now {v!r}" for k, v in wanted.items() if stored.get(k) != v]
            raise DissectionError(f"A dissection named {name!r} exists with other settings ({'; '.join(diffs)}). "
                                  "Re-run with the same settings to resume it, or give another --name.")
        return existing

    loaded = network_for(settings)
    prep = loaded.preprocessing
    try:
        modules = resolve_layers(loaded.model, settings.layers, loaded.aliases)
    except NetworkError as exc:
        raise DissectionError(str(exc)) from exc
    geometries = {layer: layer_geometry(loaded.model, module, prep.input_size) for layer, module in modules.items()}
    paths = images.find_images(root)
    if not paths:
        raise DissectionError(f"No files under {root}.")

    with transaction.atomic():
        network = Network.objects.create(
            name=name, architecture=settings.network, weights=settings.weights,
            weights_sha256=file_sha256(settings.weights) if settings.weights else "",
            input_size=prep.input_size, mean=list(prep.mean), std=list(prep.std), bgr=prep.bgr)
        for order, (layer_name, module) in enumerate(modules.items()):
            geo = geometries[layer_name]
            layer = Layer.objects.create(
                network=network, name=layer_name, module_name=module, order=order, num_units=geo.channels,
                rf_theoretical_px=geo.rf, rf_jump=geo.jump, rf_start=geo.start,
                map_height=geo.height, map_width=geo.width)
            Unit.objects.bulk_create([Unit(layer=layer, index=i) for i in range(geo.channels)])
        image_set, _ = ImageSet.objects.get_or_create(root=str(root))
        Image.objects.bulk_create([Image(image_set=image_set, path=p) for p in paths], ignore_conflicts=True,
                                  batch_size=2000)
        count = image_set.images.count()
        dissection = Dissection.objects.create(
            network=network, image_set=image_set, settings={**wanted, "image_count": count})
        ActivationChunk.objects.bulk_create([
            ActivationChunk(dissection=dissection, index=i, first_image=start,
                            image_count=min(settings.chunk_size, count - start))
            for i, start in enumerate(range(0, count, settings.chunk_size))])
    return dissection


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def settings_of(dissection: Dissection) -> DissectionSettings:
    stored = {k: v for k, v in dissection.settings.items() if k in DissectionSettings.__dataclass_fields__}
    return DissectionSettings(**stored)


def network_for(settings: DissectionSettings) -> LoadedNetwork:
    try:
        return _cached_network(settings.network, settings.weights, settings.input_size,
                               tuple(settings.mean or ()), tuple(settings.std or ()), settings.device)
    except NetworkError as exc:
        raise DissectionError(str(exc)) from exc


@functools.lru_cache(maxsize=2)
def _cached_network(architecture: str, weights: str, input_size: int | None, mean: tuple, std: tuple,
                    device: str) -> LoadedNetwork:
    """One loaded model per worker process: tasks of one dissection reuse it instead of re-reading weights."""
    base = BUILTINS[architecture].preprocessing if architecture in BUILTINS else Preprocessing()
    prep = Preprocessing(input_size or base.input_size, mean or base.mean, std or base.std, base.bgr)
    loaded = build_network(architecture, weights or None, prep)
    loaded.model.to(device)
    return loaded


def _layers(dissection: Dissection) -> list[Layer]:
    return list(dissection.network.layers.order_by("order"))


def _geometry(layer: Layer) -> LayerGeometry:
    return LayerGeometry(layer.rf_theoretical_px, layer.rf_jump, layer.rf_start, layer.num_units,
                         layer.map_height, layer.map_width)


def artifact_root(dissection: Dissection) -> str:
    return f"dissections/{dissection.network_id}-{slugify(dissection.network.name)}"


def dissection_images(dissection: Dissection, start: int = 0, count: int | None = None) -> list[tuple[int, str]]:
    """The dissection's images in their fixed order (by id, as many as existed when it started)."""
    total = dissection.settings["image_count"]
    stop = total if count is None else min(total, start + count)
    return list(dissection.image_set.images.order_by("id").values_list("id", "path")[start:stop])


# Stage 1-2: activations and top images --------------------------------------------------------

def activation_chunk_run(dissection_id: int, index: int) -> None:
    """Top-K of every unit over one chunk of images, saved to disk; unreadable images are recorded."""
    chunk = ActivationChunk.objects.select_related("dissection__network", "dissection__image_set").get(
        dissection_id=dissection_id, index=index)
    if chunk.done:
        return
    dissection = chunk.dissection
    settings = settings_of(dissection)
    loaded = network_for(settings)
    layers = _layers(dissection)
    entries = dissection_images(dissection, chunk.first_image, chunk.image_count)
    failures: dict[int, str] = {}

    def batches():
        for start in range(0, len(entries), settings.batch_size):
            part = entries[start:start + settings.batch_size]
            batch = images.load_batch(dissection.image_set.root, [p for _, p in part], loaded.preprocessing)
            failures.update({part[i][0]: reason for i, reason in batch.failures.items()})
            yield torch.tensor([part[i][0] for i in batch.indices], dtype=torch.long), batch.tensor

    tops = activations.top_k_pass(loaded.model, [layer.module_name for layer in layers], batches(), settings.top_k)
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
    rf_images = settings.rf_images or settings.top_k
    layers = _layers(dissection)
    merged = {layer.pk: activations.TopK.empty(layer.num_units, settings.top_k) for layer in layers}
    for chunk in dissection.chunks.order_by("index"):
        arrays = artifacts.read_arrays(f"{artifact_root(dissection)}/activations/chunk_{chunk.index:05d}.npz")
        for layer in layers:
            merged[layer.pk].merge(activations.TopK.from_numpy(
                {key: arrays[f"{layer.pk}.{key}"] for key in ("scores", "images", "argmax")}))
    rows, occluded = [], {}
    for layer in layers:
        unit_ids = dict(layer.units.values_list("index", "id"))
        top = merged[layer.pk]
        for unit in range(layer.num_units):
            for rank in range(top.k):
                image_id, score = int(top.images[unit, rank]), float(top.scores[unit, rank])
                if image_id < 0 or not np.isfinite(score):
                    break
                y, x = divmod(int(top.argmax[unit, rank]), layer.map_width)
                rows.append(TopImage(unit_id=unit_ids[unit], image_id=image_id, rank=rank, score=score,
                                     argmax_y=y, argmax_x=x))
                occluded[image_id] = occluded.get(image_id, False) or rank < rf_images
    if not rows:
        raise DissectionError("No readable images: every file under the image folder failed to decode.")
    with transaction.atomic():
        # The lock makes a concurrent duplicate of this task wait, then see the rows and stop.
        Dissection.objects.select_for_update().get(pk=dissection_id)
        if dissection.sweeps.exists():
            return
        TopImage.objects.bulk_create(rows, batch_size=5000)
        ImageSweep.objects.bulk_create([ImageSweep(dissection=dissection, image_id=i, occluded=o)
                                        for i, o in sorted(occluded.items())], batch_size=5000)


# Stage 3: one occlusion sweep per unique top image ---------------------------------------------

def _sweep_path(dissection: Dissection, image_id: int) -> str:
    return f"{artifact_root(dissection)}/sweeps/{image_id}.npz"


def image_sweep_run(dissection_id: int, image_id: int) -> None:
    """Feature maps of the image for every unit that ranks it, and one occlusion sweep for those
    units that use it for their RF."""
    sweep = ImageSweep.objects.select_related("dissection__network", "dissection__image_set", "image").get(
        dissection_id=dissection_id, image_id=image_id)
    if sweep.done:
        return
    started = time.perf_counter()
    dissection = sweep.dissection
    settings = settings_of(dissection)
    rf_images = settings.rf_images or settings.top_k
    loaded = network_for(settings)
    layers = {layer.pk: layer for layer in _layers(dissection)}
    tops = TopImage.objects.filter(image_id=image_id, unit__layer__in=list(layers)).values_list(
        "unit__layer_id", "unit__index", "rank", "argmax_y", "argmax_x").order_by("unit__layer_id", "unit__index")
    try:
        picture = images.crop_square(images.load_rgb(Path(dissection.image_set.root) / sweep.image.path),
                                     loaded.preprocessing.input_size)
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
        occlusion = receptive_field.OcclusionSettings(settings.occluder_size, settings.occluder_stride,
                                                      settings.batch_size * 2, settings.spread)
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
    rf_images = settings.rf_images or settings.top_k
    occlusion = receptive_field.OcclusionSettings(settings.occluder_size, settings.occluder_stride, 1, settings.spread)
    geometry = _geometry(unit.layer)
    size = dissection.network.input_size
    tops = list(unit.top_images.select_related("image").order_by("rank"))
    key = unit.layer_id
    per_image = []
    discs, centres = [], []
    for top in tops:
        arrays = artifacts.read_arrays(_sweep_path(dissection, top.image_id))
        row = int(np.flatnonzero(arrays[f"{key}.units"] == unit.index)[0])
        per_image.append(arrays[f"{key}.maps"][row])
        if top.rank < rf_images:
            rf_row = int(np.flatnonzero(arrays[f"{key}.rf_units"] == unit.index)[0])
            discs.append(receptive_field.discrepancy_to_pixels(arrays[f"{key}.disc"][rf_row][None], size, occlusion)[0])
            centres.append(tuple(int(round(c)) for c in geometry.centre(top.argmax_y, top.argmax_x)))
    base = f"{artifact_root(dissection)}/units/{slugify(unit.layer.name)}/{unit.index:04d}"
    rf = receptive_field.average_rf(discs, centres) if discs else np.zeros((2 * size - 1,) * 2, np.float32)
    kernel = segmentation.rf_kernel(rf, geometry, settings.rf_threshold)
    seg_rows = []
    for top, fmap in zip(tops, per_image, strict=True):
        mask = segmentation.segment(fmap, kernel, geometry, size, settings.activation_threshold)
        source = Path(dissection.image_set.root) / top.image.path
        picture = np.asarray(images.crop_square(images.load_rgb(source), size))
        mask_path = artifacts.write_picture(f"{base}/mask_{top.rank:03d}.png", (mask * 255).astype(np.uint8))
        shown_path = artifacts.write_picture(f"{base}/shown_{top.rank:03d}.jpg",
                                             segmentation.render(picture, mask, settings.dim), quality=90)
        seg_rows.append(Segmentation(top_image=top, mask_path=mask_path, rendered_path=shown_path,
                                     coverage=float(mask.mean())))
    map_path = artifacts.write_npy(f"{base}/rf.npy", rf)
    picture_path = artifacts.write_picture(f"{base}/rf.png", segmentation.render_rf(rf))
    with transaction.atomic():
        if ReceptiveField.objects.select_for_update().filter(unit_id=unit_id).exists():
            return
        Segmentation.objects.filter(top_image__unit_id=unit_id).delete()
        Segmentation.objects.bulk_create(seg_rows)
        ReceptiveField.objects.create(unit_id=unit_id, images_used=len(discs), map_path=map_path,
                                      picture_path=picture_path,
                                      empirical_px=receptive_field.rf_size_px(rf, settings.rf_threshold))


# Moving between stages ---------------------------------------------------------------------------

def pending_steps(dissection: Dissection) -> list[tuple[str, int]]:
    """The steps of the current stage not yet done, as (step name, id) pairs."""
    if dissection.stage == Stage.ACTIVATIONS:
        return [("activation_chunk", i) for i in dissection.chunks.filter(done=False).values_list("index", flat=True)]
    if dissection.stage == Stage.MERGING:
        return [] if dissection.sweeps.exists() else [("top_images_merge", dissection.pk)]
    if dissection.stage == Stage.SWEEPS:
        return [("image_sweep", i) for i in dissection.sweeps.filter(done=False).values_list("image_id", flat=True)]
    if dissection.stage == Stage.SEGMENTATION:
        return [("unit_segment", i) for i in units_to_segment(dissection)]
    return []


def units_to_segment(dissection: Dissection) -> list[int]:
    units = Unit.objects.filter(layer__network_id=dissection.network_id, top_images__isnull=False,
                                receptive_field__isnull=True)
    return list(units.distinct().order_by("id").values_list("id", flat=True))


def dissection_advance(dissection_id: int) -> bool:
    """Move to the next stage when the current one has nothing left; True if this call moved it.

    The move is a compare-and-set on the stage, so of several workers finishing at once exactly
    one moves it (and enqueues the next stage).
    """
    dissection = Dissection.objects.get(pk=dissection_id)
    if dissection.stage == Stage.DONE or pending_steps(dissection):
        return False
    following = {Stage.ACTIVATIONS: Stage.MERGING, Stage.MERGING: Stage.SWEEPS, Stage.SWEEPS: Stage.SEGMENTATION,
                 Stage.SEGMENTATION: Stage.DONE}
    update = {"stage": following[dissection.stage], "updated_at": timezone.now()}
    if update["stage"] == Stage.DONE:
        update["finished_at"] = timezone.now()
    return bool(Dissection.objects.filter(pk=dissection_id, stage=dissection.stage).update(**update))


STEPS = {
    "activation_chunk": lambda d, i: activation_chunk_run(d, i),
    "top_images_merge": lambda d, _i: top_images_merge(d),
    "image_sweep": lambda d, i: image_sweep_run(d, i),
    "unit_segment": lambda d, i: unit_segment(d, i),
}


def dissection_run(dissection_id: int, progress: bool = True) -> Dissection:
    """Run every remaining step in this process, stage by stage, with a progress bar per stage."""
    from tqdm import tqdm

    labels = {Stage.ACTIVATIONS: "activations", Stage.MERGING: "top images", Stage.SWEEPS: "occlusion sweeps",
              Stage.SEGMENTATION: "segmentation"}
    while True:
        dissection = Dissection.objects.get(pk=dissection_id)
        if dissection.stage == Stage.DONE:
            return dissection
        steps = pending_steps(dissection)
        # Activation chunks count in images, so the bar moves as images go through the network.
        sizes = dict(dissection.chunks.values_list("index", "image_count")) if dissection.stage == Stage.ACTIVATIONS \
            else {}
        total = sum(sizes.values()) if sizes else _stage_total(dissection)
        left = sum(sizes[i] for _, i in steps) if sizes else len(steps)
        with tqdm(total=total, initial=total - left, desc=labels[dissection.stage], disable=not progress,
                  unit="image" if sizes or dissection.stage == Stage.SWEEPS else "unit", dynamic_ncols=True) as bar:
            for name, ident in steps:
                STEPS[name](dissection_id, ident)
                bar.update(sizes.get(ident, 1) if sizes else 1)
        dissection_advance(dissection_id)


def _stage_total(dissection: Dissection) -> int:
    if dissection.stage == Stage.ACTIVATIONS:
        return dissection.chunks.count()
    if dissection.stage == Stage.SWEEPS:
        return dissection.sweeps.count()
    if dissection.stage == Stage.SEGMENTATION:
        return Unit.objects.filter(layer__network_id=dissection.network_id, top_images__isnull=False).distinct().count()
    return 1
