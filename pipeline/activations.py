"""Stage 2: one forward pass over the images records every requested layer; top-K per unit streams.

Memory holds K entries per unit whatever the number of images: each batch is folded in and dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


class _Enough(Exception):
    """Raised from a hook once every requested layer has been seen: the rest of the net is skipped."""


@contextmanager
def recording(
    model: nn.Module, module_names: Iterable[str], transform: Callable[[str, torch.Tensor], Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Hook `module_names`; each forward fills the yielded dict with `transform(name, output)`.

    The default transform clones: ReLUs run in place and would overwrite a kept reference.
    Use `run(model, x, records)` to forward, so that the pass stops after the last recorded layer.
    """
    modules = dict(model.named_modules())
    names = list(dict.fromkeys(module_names))
    records: dict[str, Any] = {}
    transform = transform or (lambda _n, out: out.detach().clone())

    def make_hook(name: str) -> Callable:
        def hook(_module: nn.Module, _inp: object, out: torch.Tensor) -> None:
            records[name] = transform(name, out)
            if len(records) == len(names):
                raise _Enough

        return hook

    handles = [modules[n].register_forward_hook(make_hook(n)) for n in names]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def run(model: nn.Module, x: torch.Tensor, records: dict[str, Any]) -> dict[str, Any]:
    """Forward `x` under `recording`, stopping as soon as every hooked layer has produced."""
    records.clear()
    with suppress(_Enough):
        model(x)
    return records


def max_and_argmax(_name: str, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image and unit: the spatial maximum (the unit's score), its flat position, and the spatial
    mean (the probe set's second score)."""
    flat = out.detach().flatten(2)  # N x U x (H*W)
    values, positions = flat.max(dim=2)  # N x U each; new tensors, so no clone is needed
    return values.float(), positions, flat.float().mean(dim=2)


@dataclass
class ProbeScores:
    """Every image's score for every unit of one layer: the maximum that ranks the top images and the
    spatial mean (N x U each, float32), by image id. One activation chunk's at a time, so memory stays
    that of a chunk however large the probe set."""

    image_ids: np.ndarray  # N
    maximum: np.ndarray  # N x U
    mean: np.ndarray  # N x U

    @classmethod
    def gather(cls, parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> ProbeScores:
        ids, maxima, means = zip(*parts, strict=True)
        return cls(torch.cat(ids).numpy(), torch.cat(maxima).numpy(), torch.cat(means).numpy())


@dataclass
class TopK:
    """The K best images of every unit of one layer: scores, image ids and argmax positions (U x K).

    Ordered by score, ties broken by the lower image id, so any chunking gives the same ranking.
    """

    scores: torch.Tensor
    images: torch.Tensor
    argmax: torch.Tensor

    @classmethod
    def empty(cls, units: int, k: int) -> TopK:
        return cls(
            torch.full((units, k), -torch.inf),
            torch.full((units, k), -1, dtype=torch.long),
            torch.zeros((units, k), dtype=torch.long),
        )

    @property
    def k(self) -> int:
        return self.scores.shape[1]

    def update(self, scores: torch.Tensor, argmax: torch.Tensor, image_ids: torch.Tensor) -> None:
        """Fold in a batch: scores and argmax are N x U, image_ids has N entries."""
        units = self.scores.shape[0]
        self._fold(scores.T, image_ids.view(1, -1).expand(units, -1), argmax.T)

    def merge(self, other: TopK) -> None:
        self._fold(other.scores, other.images, other.argmax)

    def _fold(self, scores: torch.Tensor, images: torch.Tensor, argmax: torch.Tensor) -> None:
        all_scores = torch.cat([self.scores, scores.float()], dim=1)
        all_images = torch.cat([self.images, images.long()], dim=1)
        all_argmax = torch.cat([self.argmax, argmax.long()], dim=1)
        # Sort by image id, then stably by descending score: ties keep the lower id first.
        by_id = torch.argsort(torch.where(all_images < 0, torch.iinfo(torch.long).max, all_images), dim=1)
        all_scores, all_images, all_argmax = (t.gather(1, by_id) for t in (all_scores, all_images, all_argmax))
        order = torch.argsort(-all_scores, dim=1, stable=True)[:, : self.k]
        self.scores = all_scores.gather(1, order)
        self.images = all_images.gather(1, order)
        self.argmax = all_argmax.gather(1, order)

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {"scores": self.scores.numpy(), "images": self.images.numpy(), "argmax": self.argmax.numpy()}

    @classmethod
    def from_numpy(cls, arrays: dict[str, np.ndarray]) -> TopK:
        return cls(
            torch.from_numpy(arrays["scores"]), torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["argmax"])
        )


def top_k_pass(
    model: nn.Module,
    module_names: list[str],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    k: int,
    probe: dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] | None = None,
    maps: dict[str, list[torch.Tensor]] | None = None,
) -> dict[str, TopK]:
    """Stream (image_ids, inputs) batches through the model and keep each unit's top `k` images; with
    `probe`, also every image's maximum and mean per unit (for `ProbeScores.gather`); with `maps`
    (module name -> list), also the full maps of the modules it names, float32 on the CPU (for
    Network Dissection's tally, in the same pass)."""
    tops: dict[str, TopK] = {}
    device = model_device(model)
    kept = set(maps or ())

    def transform(name: str, out: torch.Tensor) -> tuple:
        full = out.detach().to("cpu", torch.float32, copy=True) if name in kept else None
        return max_and_argmax(name, out), full

    with recording(model, module_names, transform) as records, torch.inference_mode():
        for image_ids, x in batches:
            if len(image_ids) == 0:
                continue
            run(model, x.to(device), records)
            for name in module_names:
                reduced, full = records[name]
                values, positions, means = (t.cpu() for t in reduced)
                if name not in tops:
                    tops[name] = TopK.empty(values.shape[1], k)
                tops[name].update(values, positions, image_ids)
                if probe is not None:
                    probe.setdefault(name, []).append((image_ids.clone(), values, means))
                if maps is not None and full is not None:
                    maps[name].append(full)
    return tops


def feature_maps(model: nn.Module, module_names: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Full maps (N x U x H x W) of the requested layers for a small batch, e.g. the top images."""
    with recording(model, module_names) as records, torch.inference_mode():
        run(model, x.to(model_device(model)), records)
        return {name: value.cpu() for name, value in records.items()}


def model_device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters()), torch.empty(0)).device
