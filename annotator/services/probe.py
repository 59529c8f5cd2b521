"""Every unit's score on every image of the probe set (the dissection's images): the maximum that
ranks the top images and the spatial mean, kept per activation chunk beside its top images
(`probe/chunk_NNNNN.npz`), so memory stays a chunk's however large the set. A dissection made before
these were kept gets them from `probe_scores_fill`, which runs only that pass, chunk by chunk, and
skips the chunks already done (interrupted, it resumes)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from annotator.models import ActivationChunk, Dissection, Layer
from annotator.services import artifacts
from annotator.services.dissection_setup import (
    DissectionError,
    artifact_root,
    dissection_images,
    layers_of,
    network_for,
    settings_of,
)
from pipeline import activations, images


def probe_path(dissection: Dissection, index: int) -> str:
    return f"{artifact_root(dissection)}/probe/chunk_{index:05d}.npz"


def probe_chunk_write(dissection: Dissection, index: int, layers: list[Layer], probe: dict[str, list[tuple]]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for layer in layers:
        parts = probe.get(layer.module_name)
        if parts:
            scores = activations.ProbeScores.gather(parts)
        else:  # a chunk of unreadable images only
            empty = np.zeros((0, layer.num_units), np.float32)
            scores = activations.ProbeScores(np.zeros(0, np.int64), empty, empty)
        arrays.update(
            {f"{layer.pk}.ids": scores.image_ids, f"{layer.pk}.max": scores.maximum, f"{layer.pk}.mean": scores.mean}
        )
    artifacts.write_arrays(probe_path(dissection, index), arrays)


def probe_missing(dissection: Dissection) -> list[ActivationChunk]:
    return [
        chunk
        for chunk in dissection.chunks.order_by("index")
        if not artifacts.exists(probe_path(dissection, chunk.index))
    ]


def probe_scores_fill(dissection: Dissection, progress: Callable[[int], None] | None = None) -> int:
    """Run the activation pass again for the chunks whose probe scores are missing (nothing else);
    returns how many chunks it wrote."""
    if dissection.chunks.filter(done=False).exists():
        raise DissectionError(
            f"The dissection of {dissection.network.name} has not passed its images through the "
            "network yet: finish `dissect` first (it keeps the probe scores itself)."
        )
    missing = probe_missing(dissection)
    if not missing:
        return 0
    settings = settings_of(dissection)
    loaded = network_for(settings)
    layers = layers_of(dissection)
    for chunk in missing:
        entries = dissection_images(dissection, chunk.first_image, chunk.image_count)
        probe: dict[str, list[tuple]] = {}

        def batches(entries=entries):
            for start in range(0, len(entries), settings.batch_size):
                part = entries[start : start + settings.batch_size]
                batch = images.load_batch(dissection.image_set.root, [p for _, p in part], loaded.preprocessing)
                yield torch.tensor([part[i][0] for i in batch.indices], dtype=torch.long), batch.tensor

        activations.top_k_pass(loaded.model, [layer.module_name for layer in layers], batches(), 1, probe=probe)
        probe_chunk_write(dissection, chunk.index, layers, probe)
        if progress:
            progress(chunk.image_count)
    return len(missing)


def probe_scores(
    dissection: Dissection, layer: Layer, units: list[int], kind: str = "max"
) -> tuple[np.ndarray, np.ndarray]:
    """(image ids N, scores N x len(units)) of `units` (indices) over the whole probe set, one chunk at a
    time: `kind` "max" (what ranks the top images) or "mean"."""
    if kind not in ("max", "mean"):
        raise ValueError(f"Unknown probe score {kind!r}: use max or mean.")
    missing = probe_missing(dissection)
    if missing:
        raise DissectionError(
            f"The probe scores of {dissection.network.name} are missing for {len(missing)} chunk(s): "
            f"run `manage.py probe_scores {dissection.network.name}` first."
        )
    ids, columns = [], []
    for chunk in dissection.chunks.order_by("index"):
        arrays = artifacts.read_arrays(probe_path(dissection, chunk.index), [f"{layer.pk}.ids", f"{layer.pk}.{kind}"])
        ids.append(arrays[f"{layer.pk}.ids"])
        columns.append(arrays[f"{layer.pk}.{kind}"][:, units])
    return np.concatenate(ids), np.concatenate(columns)
