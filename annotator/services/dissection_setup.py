"""Setting up a dissection: its settings, its records, and the network it runs (cached per process)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from django.conf import settings as django_settings
from django.db import transaction
from django.utils.text import slugify

from annotator.models import ActivationChunk, Dissection, Image, ImageSet, Layer, Network, Unit
from pipeline import images, receptive_field
from pipeline.networks import (
    BUILTINS,
    LayerGeometry,
    LoadedNetwork,
    NetworkError,
    Preprocessing,
    build_network,
    layer_geometries,
    resolve_layers,
)


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
    image_list: list[str] | None = None  # only these images of the folder (a probe set's index.csv); None: all
    speed_only: tuple[str, ...] = field(default=("batch_size", "device"), repr=False)

    def result_defining(self) -> dict:
        data = asdict(self)
        for key in (*self.speed_only, "speed_only"):
            data.pop(key)
        return data

    def speed(self) -> dict:
        """How fast, not what: stored apart, so a re-run may change them and the workers read them."""
        return {key: getattr(self, key) for key in self.speed_only}

    @property
    def size(self) -> int:
        """The network's input size, as `settings_of` resolves it (the network record's)."""
        if self.input_size is None:
            raise DissectionError("The dissection's input size is not resolved yet: read it with settings_of.")
        return self.input_size

    @property
    def rf_image_count(self) -> int:
        """Top images per unit whose occlusion sweeps are averaged into its RF."""
        return self.rf_images or self.top_k

    @property
    def occlusion(self) -> receptive_field.OcclusionSettings:
        """The sweeps' settings; a sweep batch holds twice the activation pass's images (occluded
        copies of one image share their layers' weights in cache)."""
        return receptive_field.OcclusionSettings(
            self.occluder_size, self.occluder_stride, self.batch_size * 2, self.spread
        )


def dissection_start(settings: DissectionSettings, name: str | None = None, queued: bool = False) -> Dissection:
    """Create the records of a new dissection, or return the existing one with the same settings.

    A name already used with other settings is refused with the differences listed, so a re-run
    resumes only the work it describes. A queued dissection's device is the workers' business: the
    machine that enqueues it need not have a GPU.
    """
    root = Path(settings.images).expanduser().resolve()
    if not root.is_dir():
        raise DissectionError(f"Image folder not found: {settings.images}")
    settings.images = str(root)
    if settings.image_list is not None and set(settings.image_list) == set(images.find_images(root)):
        settings.image_list = None  # the whole folder: the same dissection as without a list
    if not queued:
        device_of(settings)  # refused here, before any record, when this machine cannot run it
    name = name or settings.network
    if settings.weights:
        settings.weights = str(Path(settings.weights).expanduser().resolve())
    wanted = settings.result_defining()
    existing = Dissection.objects.filter(network__name=name).select_related("network").first()
    if existing is not None:
        stored = dict(existing.settings)
        if {k: stored.get(k) for k in wanted} != wanted:
            diffs = [f"{k}: stored {stored.get(k)!r}, now {v!r}" for k, v in wanted.items() if stored.get(k) != v]
            raise DissectionError(
                f"A dissection named {name!r} exists with other settings ({'; '.join(diffs)}). "
                "Re-run with the same settings to resume it, or give another --name."
            )
        if stored.get("speed") != settings.speed():
            Dissection.objects.filter(pk=existing.pk).update(settings={**stored, "speed": settings.speed()})
            existing.refresh_from_db()
        return existing

    loaded = network_for(settings, device="cpu")  # only its layers' shapes are read here
    prep = loaded.preprocessing
    try:
        modules = resolve_layers(loaded.model, settings.layers, loaded.aliases)
    except NetworkError as exc:
        raise DissectionError(str(exc)) from exc
    try:
        by_module = layer_geometries(loaded.model, list(dict.fromkeys(modules.values())), prep.input_size)
    except NetworkError as exc:
        raise DissectionError(str(exc)) from exc
    geometries = {layer: by_module[module] for layer, module in modules.items()}
    paths = images.find_images(root)
    if settings.image_list is not None:
        present = set(paths)
        missing = [p for p in settings.image_list if p not in present]
        if missing:
            raise DissectionError(f"{len(missing)} listed image(s) are not under {root}, the first {missing[0]!r}.")
        paths = sorted(set(settings.image_list))
    if not paths:
        raise DissectionError(f"No files under {root}.")

    with transaction.atomic():
        network = Network.objects.create(
            name=name,
            architecture=settings.network,
            weights=settings.weights,
            weights_sha256=file_sha256(settings.weights) if settings.weights else "",
            input_size=prep.input_size,
            mean=list(prep.mean),
            std=list(prep.std),
            bgr=prep.bgr,
        )
        for order, (layer_name, module) in enumerate(modules.items()):
            geo = geometries[layer_name]
            layer = Layer.objects.create(
                network=network,
                name=layer_name,
                module_name=module,
                order=order,
                num_units=geo.channels,
                rf_theoretical_px=geo.rf,
                rf_jump=geo.jump,
                rf_start=geo.start,
                map_height=geo.height,
                map_width=geo.width,
            )
            Unit.objects.bulk_create([Unit(layer=layer, index=i) for i in range(geo.channels)])
        image_set, _ = ImageSet.objects.get_or_create(root=str(root))
        Image.objects.bulk_create(
            [Image(image_set=image_set, path=p) for p in paths], ignore_conflicts=True, batch_size=2000
        )
        count = image_set.images.count()
        dissection = Dissection.objects.create(
            network=network, image_set=image_set, settings={**wanted, "image_count": count, "speed": settings.speed()}
        )
        ActivationChunk.objects.bulk_create(
            [
                ActivationChunk(
                    dissection=dissection,
                    index=i,
                    first_image=start,
                    image_count=min(settings.chunk_size, count - start),
                )
                for i, start in enumerate(range(0, count, settings.chunk_size))
            ]
        )
    return dissection


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def settings_of(dissection: Dissection) -> DissectionSettings:
    """The settings the command gave, as every step reads them, with the input size, mean and std
    resolved as the network record holds them (the one source of the input size)."""
    merged = {**dissection.settings, **dissection.settings.get("speed", {})}
    stored = {k: v for k, v in merged.items() if k in DissectionSettings.__dataclass_fields__}
    network = dissection.network
    stored.update(input_size=network.input_size, mean=list(network.mean), std=list(network.std))
    return DissectionSettings(**stored)


def device_of(settings: DissectionSettings) -> str:
    """The device this process runs the dissection on: its own DISSECT_DEVICE, else the dissection's."""
    device = django_settings.DISSECT_DEVICE or settings.device
    source = "DISSECT_DEVICE" if django_settings.DISSECT_DEVICE else "--device"
    try:
        torch.device(device)
    except RuntimeError as exc:
        raise DissectionError(f"Unknown device {device!r} ({source}): {exc}") from exc
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DissectionError(
            f"The device is {device} ({source}), but this machine's torch sees no CUDA device. "
            "Run it on a GPU machine, or set DISSECT_DEVICE=cpu for this worker."
        )
    return device


def network_for(settings: DissectionSettings, device: str | None = None) -> LoadedNetwork:
    device = device or device_of(settings)
    try:
        return _cached_network(
            settings.network,
            settings.weights,
            settings.input_size,
            tuple(settings.mean or ()),
            tuple(settings.std or ()),
            device,
        )
    except NetworkError as exc:
        raise DissectionError(str(exc)) from exc


@functools.lru_cache(maxsize=2)
def _cached_network(
    architecture: str, weights: str, input_size: int | None, mean: tuple, std: tuple, device: str
) -> LoadedNetwork:
    """One loaded model per worker process: tasks of one dissection reuse it instead of re-reading weights."""
    base = BUILTINS[architecture].preprocessing if architecture in BUILTINS else Preprocessing()
    prep = Preprocessing(input_size or base.input_size, mean or base.mean, std or base.std, base.bgr)
    loaded = build_network(architecture, weights or None, prep)
    loaded.model.to(device)
    return loaded


def full_pass_reason(dissection: Dissection) -> str:
    """Why this dissection's occlusion sweeps run as full forward passes rather than the cone
    sweep ('' when the cone sweep can follow every layer), for the command to say once."""
    from pipeline.occlusion_cone import cone_problem

    settings = settings_of(dissection)
    loaded = network_for(settings, device="cpu")
    return cone_problem(loaded.model, [layer.module_name for layer in layers_of(dissection)], settings.size)


def layers_of(dissection: Dissection) -> list[Layer]:
    return list(dissection.network.layers.order_by("order"))


def geometry_of(layer: Layer) -> LayerGeometry:
    """A dissected layer's geometry as `dissect` stored it (a layer of imported answers has none)."""
    rf, jump, start = layer.rf_theoretical_px, layer.rf_jump, layer.rf_start
    height, width = layer.map_height, layer.map_width
    if rf is None or jump is None or start is None or height is None or width is None:
        raise DissectionError(f"Layer {layer.name} has no geometry: it was not dissected here.")
    return LayerGeometry(rf, jump, start, layer.num_units, height, width)


def artifact_root(dissection: Dissection) -> str:
    return f"dissections/{dissection.network_id}-{slugify(dissection.network.name)}"


def dissection_images(dissection: Dissection, start: int = 0, count: int | None = None) -> list[tuple[int, str]]:
    """The dissection's images in their fixed order (by id, as many as existed when it started)."""
    total = dissection.image_count
    stop = total if count is None else min(total, start + count)
    return list(dissection.image_set.images.order_by("id").values_list("id", "path")[start:stop])
